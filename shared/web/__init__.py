"""The only FastAPI code of ``shared``: the error shape, auth dependencies, the service context
as a dependency, photo routes, NDJSON exports, and lists in pages (``after`` and the ``Link`` to
the next)."""
