"""The photo routes every service offers: upload (multipart) and download by content hash."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile
from pydantic import BaseModel

from shared.auth import Principal, current_principal
from shared.context import ServiceContext, service_context
from shared.errors import InvalidInput, NotFound
from shared.storage import PhotoNotFound, media_type, read_photos

router = APIRouter(prefix="/photos", tags=["photos"])


class StoredPhoto(BaseModel):
    """A photo as stored: refer to it by ``digest`` in reports, feedback and checks."""

    digest: str
    media_type: str
    size: int


@router.post("", status_code=201, summary="Upload photos (JPEG, PNG or WebP)")
async def upload_photos(
    ctx: Annotated[ServiceContext, Depends(service_context)],
    _caller: Annotated[Principal, Depends(current_principal)],
    files: Annotated[list[UploadFile], File(description="one or more photos")],
) -> list[StoredPhoto]:
    """Store photos by their content hash; uploading the same photo twice stores it once."""
    photos = await read_photos(files, max_bytes=ctx.settings.max_photo_bytes, max_count=ctx.settings.max_photos)
    return [StoredPhoto(digest=await ctx.photos.put(p), media_type=media_type(p), size=len(p)) for p in photos]


@router.get("/{digest}", summary="Download a photo", response_class=Response)
async def download_photo(
    digest: str,
    ctx: Annotated[ServiceContext, Depends(service_context)],
    _caller: Annotated[Principal, Depends(current_principal)],
) -> Response:
    """The photo's bytes; photos never change, so clients may cache them forever."""
    try:
        data, kind = await ctx.photos.get(digest)
    except PhotoNotFound:
        raise NotFound(f"no photo {digest}") from None
    return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=31536000, immutable"})


async def check_photos_exist(ctx: ServiceContext, digests: list[str]) -> None:
    """Refuse references to photos that were never uploaded."""
    missing = [d for d in digests if not await ctx.photos.exists(d)]
    if missing:
        raise InvalidInput("upload these photos first (POST photos)", {"missing_photos": missing})
