"""The handling service's HTTP routes (thin: parse, call a handler, format)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["handling"])
