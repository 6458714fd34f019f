"""How the services are put together and run: the app factory, the runtime, the CLI."""
