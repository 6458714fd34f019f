"""citycase's own library: settings, clock, ids, events, bus, outbox/inbox and database helpers.

Every service depends on this package and on nothing of another service.
"""
