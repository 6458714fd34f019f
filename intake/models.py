"""The intake service's tables, in its own schema ``intake``."""

from __future__ import annotations

from shared.messaging.tables import service_metadata

metadata = service_metadata()
