"""What a service package declares about itself so the runtime can run it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter
from sqlalchemy import MetaData

from shared.messaging.consumer import ConsumerSpec
from shared.settings import Settings


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name, tables, HTTP routes and the consumers it runs."""

    name: str
    title: str
    metadata: MetaData
    router: APIRouter
    consumers: Callable[[Settings], Sequence[ConsumerSpec]]
