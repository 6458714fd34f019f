"""The ground floor: clock, ids, errors, settings, metrics, accounts and photo storage."""
