"""The only FastAPI code of ``shared``: the error shape, auth dependencies, the service context
as a dependency, photo routes and NDJSON exports."""
