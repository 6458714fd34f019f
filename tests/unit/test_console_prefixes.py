"""The console's development server passes to the city exactly the paths the runtime keeps from
the console: one list, written in two languages."""

from __future__ import annotations

import re
from pathlib import Path

from services.runtime.console import API_PREFIXES, MOUNTED_PREFIXES
from services.runtime.registry import load_specs

VITE_CONFIG = Path(__file__).resolve().parents[2] / "web" / "vite.config.ts"


def test_the_development_server_passes_on_every_api_prefix() -> None:
    listed = re.search(r"const API_PREFIXES = \[(.*?)\]", VITE_CONFIG.read_text(), re.DOTALL)
    assert listed is not None
    assert set(re.findall(r"'/([^']+)'", listed.group(1))) == set(API_PREFIXES)


def test_the_gateway_knows_every_service_mount() -> None:
    mounted = {prefix.strip("/"): spec.name for spec in load_specs(["all"]) for prefix in spec.mounts}
    assert mounted == dict(MOUNTED_PREFIXES)
