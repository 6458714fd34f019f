"""What ``python -m services run`` prints once its port listens: where the console and each
service's API documentation are, and, on the demo city, whom to log in as. A newcomer reads this
first, so it says where to go rather than what the process did to get there.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI
from starlette.routing import Mount

from shared.core.settings import Exposure, Mode, Settings

# The settings' default city: its log-ins are public (deploy/cities/demo/users.yaml).
_DEMO_CITY = Settings.model_fields["city_dir"].default


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, printing ``where_to_go`` once its socket listens: with the address it
    really got (the port the system chose, when asked for port 0)."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self._settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or not isinstance(self.config.app, FastAPI):
            return
        listener = self.servers[0].sockets[0]
        host, port = listener.getsockname()[:2]
        base = f"http://[{host}]:{port}" if listener.family == socket.AF_INET6 else f"http://{host}:{port}"
        print(where_to_go(base, self.config.app, self._settings), flush=True)


def where_to_go(base: str, app: FastAPI, settings: Settings) -> str:
    """A few lines: the console's address, each API documentation's, and the demo city's log-in."""
    services = [service.name for service in app.state.runtime.services]
    # Each service's app, and each of its mounts' (/open311), has documentation of its own.
    documented = [route.path for route in app.routes if isinstance(route, Mount) and isinstance(route.app, FastAPI)]
    if settings.mode is Mode.EMBEDDED:
        where = f"embedded mode, data in {settings.data_dir}"
    else:
        where = "production mode: PostgreSQL and Kafka"
    lines = [f"citycase is serving {', '.join(services)} ({where})"]
    if (settings.console_dir / "index.html").is_file():
        lines.append(f"  console   {base}/")
    else:
        lines.append(f"  console   not built: `make web` builds it into {settings.console_dir}")
    if settings.docs is Exposure.OFF:
        lines.append("  API docs  off (CITYCASE_DOCS=off)")
    else:
        whose = " (with a shift lead's token)" if settings.docs is Exposure.SHIFT_LEAD else ""
        lines.append(f"  API docs  {base}/docs (log-in, the city, the calendar, operations){whose}")
        lines += [f"            {base}{prefix}/docs" for prefix in documented]
    if settings.city_dir.resolve() == _DEMO_CITY:
        lines.append(
            "  log in    shiftlead / demo-shift_lead (the demo city's other log-ins:"
            " deploy/cities/demo/users.yaml, password demo-<role>)"
        )
    return "\n".join(lines)
