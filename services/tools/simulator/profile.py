"""How a simulated city behaves: its volume, where reports come from, and how often each actor
does what. Every default is a figure real cities publish (see the domain notes); a profile file
(YAML or JSON) or ``--set name=value`` changes any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.events.catalogue import ReportSource

# Street order and city appearance are what inspectors and cameras find most; components
# (manholes, lamps, signs...) are a minority. By major class (or a category code, which wins).
DEFAULT_CATEGORY_WEIGHTS: dict[str, float] = {
    "02-05": 30.0,  # street order: vending, shops trading outside, parking
    "02-01": 24.0,  # city appearance: exposed garbage, piled materials
    "02-02": 11.0,  # advertising: small ads, banners
    "02-03": 6.0,  # construction: dust, debris, occupied roads
    "02-06": 3.0,  # other
    "02-04": 1.0,  # emergencies
    "01-01": 5.0,  # public utilities: manhole covers, lamps, hydrants
    "01-02": 6.0,  # roads and traffic
    "01-03": 7.0,  # city appearance facilities: bins, toilets
    "01-04": 4.0,  # parks and greening
    "01-05": 1.5,  # buildings and land
    "01-06": 1.5,  # other facilities
}


class Profile(BaseModel):
    """The rates of a simulated city. Shares are probabilities per case unless said otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reports_per_day: float = Field(
        820.0, gt=0, description="reports a day at scale 1.0: Zhoushan files about 157,000 in half a year"
    )
    sources: dict[ReportSource, float] = Field(
        default_factory=lambda: {
            ReportSource.INSPECTOR: 0.40,
            ReportSource.VIDEO: 0.45,  # Zhoushan, H1 2024: 45.2% found by video AI
            ReportSource.HOTLINE: 0.10,
            ReportSource.PUBLIC: 0.05,
        },
        description="where reports come from (relative weights, normalised)",
    )
    video_filed: float = Field(0.97, ge=0, le=1, description="video detections an operator files; the rest rejected")
    verification_confirmed: float = Field(
        0.97, ge=0, le=1, description="hotline and public reports the inspector confirms on site (核实)"
    )
    repeat_report: float = Field(
        0.06,
        ge=0,
        le=1,
        description="detections, hotline and public reports of a problem reported nearby within the day before:"
        " merged as duplicates while that case is open, which brings effective filing to about 97%",
    )
    self_handled: float = Field(
        0.33, ge=0, le=1, description="inspector reports fixed on the spot (自行处置; Nanping: about a third)"
    )
    returned: float = Field(0.06, ge=0, le=1, description="cases the first department sends back (回退)")
    extension_requested: float = Field(0.03, ge=0, le=1, description="cases whose department asks for more time")
    extension_approved: float = Field(0.85, ge=0, le=1, description="extension requests the shift lead approves")
    suspended: float = Field(0.005, ge=0, le=1, description="cases suspended (挂账) for a while, then resumed")
    late: float = Field(0.02, ge=0, le=1, description="cases the department handles after the deadline")
    check_failed: float = Field(0.06, ge=0, le=1, description="handled cases whose check fails: rework (返工)")
    cancelled: float = Field(0.005, ge=0, le=1, description="cases a shift lead cancels (作废)")
    category_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS),
        description="relative frequency by major class or category code (a category code wins)",
    )

    @field_validator("sources", "category_weights")
    @classmethod
    def _weights(cls, weights: dict[Any, float]) -> dict[Any, float]:
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return weights

    def source_share(self, source: ReportSource) -> float:
        """The share of reports that come from ``source``."""
        return self.sources.get(source, 0.0) / sum(self.sources.values())


class ProfileError(ValueError):
    """A profile file or an override that does not describe a valid profile."""


def load_profile(path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Profile:
    """The default profile, changed by the file at ``path`` (YAML or JSON) and then by
    ``name=value`` overrides; a dotted name sets one entry of a mapping (``sources.video=0.3``).
    """
    data: dict[str, Any] = Profile().model_dump(mode="json")
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ProfileError(f"{path}: a profile is a mapping of names to values")
        for name, value in loaded.items():
            # A mapping in the file replaces the default one: a city lists all its sources.
            data[name] = value
    for override in overrides:
        name, sep, text = override.partition("=")
        if not sep:
            raise ProfileError(f"{override!r}: write name=value")
        value = yaml.safe_load(text)
        head, _, key = name.partition(".")
        if key:
            if not isinstance(data.get(head), dict):
                raise ProfileError(f"{name}: {head} is not a mapping")
            data[head] = {**data[head], key: value}
        else:
            data[head] = value
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(str(exc)) from exc
