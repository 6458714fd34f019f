"""The contract a service plugs in with: its spec (what the runtime runs) and its context (what
its handlers may touch)."""
