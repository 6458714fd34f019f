"""Photos over HTTP: the upload (multipart) and download routes every service offers, reading
uploads with their limits, and refusing references to photos never uploaded."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile
from pydantic import BaseModel

from shared.core.auth import Principal
from shared.core.errors import InvalidInput, NotFound
from shared.core.photos import PhotoNotFound, PhotoTooLarge, UnsupportedPhoto, media_type, verify_image
from shared.service.context import ServiceContext
from shared.web.auth import current_principal
from shared.web.context import Context

router = APIRouter(prefix="/photos", tags=["photos"])


class StoredPhoto(BaseModel):
    """A photo as stored: refer to it by ``digest`` in reports, feedback and checks."""

    digest: str
    media_type: str
    size: int


@router.post("", status_code=201, summary="Upload photos (JPEG, PNG or WebP)")
async def upload_photos(
    ctx: Context,
    _caller: Annotated[Principal, Depends(current_principal)],
    files: Annotated[list[UploadFile], File(description="one or more photos")],
) -> list[StoredPhoto]:
    """Store photos by their content hash; uploading the same photo twice stores it once."""
    photos = await read_photos(files, max_bytes=ctx.settings.max_photo_bytes, max_count=ctx.settings.max_photos)
    return [StoredPhoto(digest=await ctx.photos.put(p), media_type=media_type(p), size=len(p)) for p in photos]


@router.get("/{digest}", summary="Download a photo", response_class=Response)
async def download_photo(
    digest: str,
    ctx: Context,
    _caller: Annotated[Principal, Depends(current_principal)],
) -> Response:
    """The photo's bytes; photos never change, so clients may cache them forever."""
    try:
        data, kind = await ctx.photos.get(digest)
    except PhotoNotFound:
        raise NotFound(f"no photo {digest}") from None
    # nosniff: a browser shows the bytes only as the image type they were checked to be.
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=kind, headers=headers)


async def ensure_photos_exist(ctx: ServiceContext, digests: list[str]) -> None:
    """Refuse references to photos that were never uploaded."""
    missing = [d for d in digests if not await ctx.photos.exists(d)]
    if missing:
        raise InvalidInput("upload these photos first (POST photos)", {"missing_photos": missing})


async def read_photos(files: list[UploadFile], *, max_bytes: int, max_count: int) -> list[bytes]:
    """The uploaded photos, checked for count and size, and decoded in full, before anything is
    stored."""
    if len(files) > max_count:
        raise PhotoTooLarge(f"at most {max_count} photos per request")
    photos = []
    for upload in files:
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PhotoTooLarge(f"{upload.filename or 'a photo'} is larger than {max_bytes} bytes")
        try:
            await asyncio.to_thread(verify_image, data)
        except UnsupportedPhoto as exc:
            raise UnsupportedPhoto(f"{upload.filename or 'a photo'}: {exc}") from None
        photos.append(data)
    return photos
