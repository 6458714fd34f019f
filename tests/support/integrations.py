"""A city's integrations for tests: a hotline and department systems whose endpoints are given,
signing with secrets known to the test, and the same as an ``integrations.yaml``."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import yaml

from shared.integration.endpoints import Endpoint, Hotline, Integrations, RetryPolicy, department_endpoint
from shared.integration.signing import Scheme, Secret, Signer, Verifier

HOTLINE_ID = "12345"
HOTLINE_ENDPOINT = f"hotline:{HOTLINE_ID}"
# The key the hotline stub verifies our signatures with (Standard Webhooks: whsec_<base64>).
OUTBOUND_KEY = bytes(range(7, 39))
OUTBOUND_SECRET = "whsec_" + base64.b64encode(OUTBOUND_KEY).decode()
INBOUND_SECRET = "whsec_" + base64.b64encode(bytes(range(50, 82))).decode()
# Retries scaled to a test: a few tenths of a second apart, capped at a second, for up to an hour.
FAST_RETRY: dict[str, float] = {
    "max_age_hours": 1.0,
    "first_delay_seconds": 0.1,
    "max_delay_seconds": 1.0,
    "timeout_seconds": 2.0,
}


def endpoint(name: str, url: str, **retry: float) -> Endpoint:
    """An outbound endpoint signing with the test's secret (Standard Webhooks)."""
    signer = Signer(Scheme.STANDARD_WEBHOOKS, (Secret("out", OUTBOUND_SECRET),))
    return Endpoint(name=name, url=url, signer=signer, retry=RetryPolicy.model_validate(retry))


def integrations(hotline_url: str | None, departments: Mapping[str, str] | None = None, **retry: float) -> Integrations:
    """Hotline ``12345`` sending to ``hotline_url`` (None: nowhere) and the ``departments`` (id to
    url) with systems of their own."""
    outbound = None if hotline_url is None else endpoint(HOTLINE_ENDPOINT, hotline_url, **retry)
    hotline = Hotline(
        id=HOTLINE_ID,
        name="12345政务服务便民热线",
        verifier=Verifier(Scheme.STANDARD_WEBHOOKS, (Secret("in", INBOUND_SECRET),)),
        reopen_on_unsatisfied=True,
        account="hotline",
        outbound=outbound,
    )
    systems = tuple(endpoint(department_endpoint(d), url, **retry) for d, url in (departments or {}).items())
    return Integrations((hotline,), systems)


def integrations_yaml(
    hotline_url: str, departments: Mapping[str, Mapping[str, Any]], retry: Mapping[str, float]
) -> str:
    """The same city as ``integrations.yaml``: the hotline (pushing as the demo's ``hotline``
    account) and each department with its url and its own retry keys."""
    outbound = {"url": hotline_url, "scheme": "standard-webhooks", "secrets": [{"id": "out", "value": OUTBOUND_SECRET}]}
    document = {
        "retry": dict(retry),
        "hotlines": [
            {
                "id": HOTLINE_ID,
                "name": "12345政务服务便民热线",
                "account": "hotline",
                "reopen_on_unsatisfied": True,
                "inbound": {"scheme": "standard-webhooks", "secrets": [{"id": "in", "value": INBOUND_SECRET}]},
                "outbound": outbound,
            }
        ],
        "departments": [
            {
                "department_id": department_id,
                "outbound": {
                    "url": spec["url"],
                    "scheme": "standard-webhooks",
                    "secrets": [{"id": "out", "value": OUTBOUND_SECRET}],
                    **({"retry": dict(spec["retry"])} if "retry" in spec else {}),
                },
            }
            for department_id, spec in departments.items()
        ],
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
