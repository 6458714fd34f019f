"""The dispatch service's tables, in its own schema ``dispatch``."""

from __future__ import annotations

from shared.messaging.tables import service_metadata

metadata = service_metadata()
