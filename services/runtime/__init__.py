"""How the services are put together and run: the registry, the runtime (bus, stores, relays,
consumers), the app factory and log-in."""
