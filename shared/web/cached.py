"""Documents computed once per process and served cheaply many times: the city's geometry and
lists, which only change when the city's folder does (and the processes restart).

Each is serialised and compressed once; a browser keeps its copy and asks again with the ETag,
answered 304 without a body. The city's maps run to a megabyte of GeoJSON that gzip shrinks
twelvefold, so the compressed form is kept beside the plain one rather than made per request.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.web.negotiation import weights

# Behind a log-in, so for the caller's own browser only ("private"); kept, but revalidated on
# every use ("no-cache"), which costs a 304 when nothing changed.
CACHE_CONTROL = "private, no-cache"


@dataclass(frozen=True)
class CachedDocument:
    """A serialised document, its gzip form and its entity tag."""

    media_type: str
    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of_json(cls, content: Any, media_type: str = "application/json") -> CachedDocument:
        """``content`` as compact UTF-8 JSON. The tag is weak (``W/``): the plain and the
        gzip bodies are the same document, and either revalidates the other."""
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'
        return cls(media_type, body, gzip.compress(body, compresslevel=9, mtime=0), etag)

    def response(self, request: Request) -> Response:
        """304 when the request's ``If-None-Match`` names this version, else the document,
        gzip-encoded when the request accepts it."""
        headers = {"ETag": self.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        if _names(request.headers.get("if-none-match", ""), self.etag):
            return Response(status_code=304, headers=headers)
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(self.gzipped, media_type=self.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(self.body, media_type=self.media_type, headers=headers)


def _names(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag``, compared weakly (RFC 9110 13.1.2)."""
    wanted = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip: named, else through ``*``, with a
    weight above 0 (RFC 9110 12.5.3)."""
    listed = weights(accept_encoding)
    return listed.get("gzip", listed.get("*", 0.0)) > 0
