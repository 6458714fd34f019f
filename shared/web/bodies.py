"""Request bodies and fields that several services' routes take alike."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A photo as the body of a report, a verification or a check names it: the content hash an
# upload answered with (``POST photos``).
PhotoDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ReasonIn(BaseModel):
    """Why."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)
