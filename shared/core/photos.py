"""Photos, stored by content hash behind a small interface (files on disk by default).

The hash is the name, so a phone that re-sends the same photo after a lost connection stores it
once, and any service can serve a photo another service received.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from PIL import Image

# Magic numbers, not the client's Content-Type, decide what a file is.
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/webp", b"WEBP", 8),
)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class UnsupportedPhoto(ValueError):
    """Not a JPEG, PNG or WebP image."""


class PhotoTooLarge(ValueError):
    """Larger than the configured limit, or too many photos."""


class PhotoNotFound(LookupError):
    """No photo has that content hash."""


class PhotoStore(Protocol):
    """Where photos live."""

    async def put(self, data: bytes) -> str:
        """Store ``data``; its SHA-256 hex digest is its name."""
        ...

    async def get(self, digest: str) -> tuple[bytes, str]:
        """The bytes and media type of a stored photo; ``PhotoNotFound`` otherwise."""
        ...

    async def exists(self, digest: str) -> bool:
        """Whether a photo with this digest is stored."""
        ...


# Larger images are refused rather than decoded: 40 megapixels is well above any phone camera,
# and far below what a decompression bomb would unpack to.
MAX_PIXELS = 40_000_000
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def verify_image(data: bytes) -> str:
    """The media type of ``data`` once it has decoded in full as a JPEG, PNG or WebP image;
    ``UnsupportedPhoto`` for anything else: another format, a truncated or corrupt file, an
    image of more than ``MAX_PIXELS`` pixels. CPU-bound: run it off the event loop."""
    try:
        with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UnsupportedPhoto(f"at most {MAX_PIXELS:,} pixels per photo")
            kind = _FORMATS[image.format or ""]
            image.load()
    except UnsupportedPhoto:
        raise
    except (OSError, ValueError, SyntaxError, KeyError, Image.DecompressionBombError) as exc:
        raise UnsupportedPhoto("not a JPEG, PNG or WebP image that decodes") from exc
    return kind


def media_type(data: bytes) -> str:
    """The image type by its magic number; ``UnsupportedPhoto`` if it is none we accept."""
    for kind, signature, offset in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature and (kind != "image/webp" or data[:4] == b"RIFF"):
            return kind
    raise UnsupportedPhoto("only JPEG, PNG and WebP photos are accepted")


class FilePhotoStore:
    """Photos as files under ``root``, fanned out by the first bytes of the hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise PhotoNotFound(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    async def put(self, data: bytes) -> str:
        """Write atomically (temp file + rename) so a crash never leaves half a photo."""
        media_type(data)
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            await asyncio.to_thread(_write_atomically, path, data)
        return digest

    async def exists(self, digest: str) -> bool:
        """Whether the file is there."""
        try:
            return await asyncio.to_thread(self._path(digest).exists)
        except PhotoNotFound:
            return False

    async def get(self, digest: str) -> tuple[bytes, str]:
        """Read a photo back."""
        path = self._path(digest)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise PhotoNotFound(digest) from None
        return data, media_type(data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
