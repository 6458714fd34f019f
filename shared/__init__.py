"""citycase's own library, the ground floor: it imports nothing above it.

``core`` (clock, ids, errors, settings, metrics, accounts, photos), ``city`` (model, loader,
calendar, geometry), ``events`` (envelope, catalogue), ``messaging`` (bus, outbox, relay,
consumers), ``db``, ``web`` (the only FastAPI code here) and ``service`` (the contract a service
plugs in with). Every service depends on this package and on nothing of another service.
"""
