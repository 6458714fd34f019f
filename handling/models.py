"""The handling service's tables, in its own schema ``handling``."""

from __future__ import annotations

from shared.messaging.tables import service_metadata

metadata = service_metadata()
