"""Reliable messaging: the transactional outbox, its relay, and idempotent consumers (inbox)."""
