"""The services of the platform, loaded by name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from shared.core.settings import SERVICE_NAMES
from shared.service.spec import ServiceSpec


def load_specs(names: Sequence[str]) -> list[ServiceSpec]:
    """The specs of the named services, in the platform's order; ``all`` means every service."""
    wanted = SERVICE_NAMES if "all" in names else tuple(names)
    unknown = sorted(set(wanted) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(f"unknown services: {', '.join(unknown)}")
    return [importlib.import_module(f"{name}.app").SPEC for name in SERVICE_NAMES if name in wanted]
