"""Routes another system calls with a signed body instead of a bearer token (a hotline's webhooks).

The signature covers the body's bytes as sent, so the dependency reads them raw and verifies them
before anything parses them: a forged request costs a hash, never a JSON parse or a query, and no
route sees a byte of it. The route then parses the verified bytes with :meth:`SignedBody.parsed`,
which refuses malformed ones as FastAPI refuses a body it parses itself (422, the same shape).

Such a route declares no bearer dependency, so the request guard lets it through without a token,
still holding it to the body size limit. Its OpenAPI document gets the body's schema and the
signature headers from :func:`signed_request_docs`, as FastAPI cannot read them off a body it
does not parse.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from shared.integration.endpoints import Hotline
from shared.integration.signing import Signed, verify
from shared.web.context import Context

M = TypeVar("M", bound=BaseModel)

# The headers of both schemes, for the documentation: which ones a request needs depends on the
# scheme the city configured for its sender.
_SIGNATURE_HEADERS = {
    "webhook-id": "standard-webhooks: the message id, its idempotency key (a retry repeats it)",
    "webhook-timestamp": "standard-webhooks: when it was sent, Unix seconds (within 5 minutes of ours)",
    "webhook-signature": 'standard-webhooks: "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>", space-separated',
    "X-App-Key": "app-key: the sender's app key",
    "X-Timestamp": "app-key: when it was sent, Unix milliseconds (within 5 minutes of ours)",
    "X-Nonce": "app-key: 16 to 128 random characters, never used again",
    "X-Sign": 'app-key: lowercase hex HMAC-SHA256 or HMAC-SM3 of "{appKey}\\n{timestamp}\\n{nonce}\\n{body}"',
}


@dataclass(frozen=True)
class SignedBody:
    """A request body whose signature holds: who sent it, its nonce, and the bytes as sent."""

    hotline: Hotline
    signed: Signed
    # The raw body holds what the sender keeps private (a citizen's contact): out of the repr.
    body: bytes = field(repr=False)

    @property
    def body_sha256(self) -> str:
        """The hex SHA-256 of the body: what tells a sender's retry from a replay under one nonce."""
        return hashlib.sha256(self.body).hexdigest()

    def parsed(self, model: type[M]) -> M:
        """The body as ``model``; a ``RequestValidationError`` (422) for malformed JSON or content."""
        try:
            return model.model_validate_json(self.body)
        except ValidationError as exc:
            # Location, message and kind only: the input may hold what the sender keeps private.
            errors = [
                {"loc": ("body", *error["loc"]), "msg": error["msg"], "type": error["type"]} for error in exc.errors()
            ]
            raise RequestValidationError(errors) from None


async def signed_by_hotline(
    request: Request,
    ctx: Context,
    hotline_id: Annotated[str, Path(description="the hotline's id in the city's integrations.yaml")],
) -> SignedBody:
    """The body of a request the hotline ``hotline_id`` signed. 401 for a hotline the city does
    not have, a missing or unreadable signature header, a timestamp more than five minutes from
    ours or a signature none of its active secrets reproduces (the message says which); 415 for a
    body that is not JSON."""
    hotline = ctx.integrations.hotline(hotline_id)
    if not _is_json(request.headers.get("content-type", "")):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "the body is JSON (Content-Type: application/json)")
    try:
        body = await request.body()
    except ClientDisconnect:
        # The request guard cut the body off at its limit and has answered 413 already.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body did not arrive whole") from None
    signed = verify(hotline.verifier, request.headers, body, ctx.clock.now())
    return SignedBody(hotline, signed, body)


SignedByHotline = Annotated[SignedBody, Depends(signed_by_hotline)]


def signed_request_docs(model: type[BaseModel]) -> dict[str, Any]:
    """A signed route's ``openapi_extra``: its JSON body's schema (``model``, inlined, as it is
    declared nowhere else) and the signature headers of both schemes."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "parameters": [
            {"name": name, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
            for name, text in _SIGNATURE_HEADERS.items()
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(schema, definitions)}},
        },
    }


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` to ``definitions`` replaced by the definition itself."""
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        target = copy.deepcopy(definitions[reference.removeprefix("#/$defs/")])
        return _inlined({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, definitions)
    return {key: _inlined(value, definitions) for key, value in schema.items()}


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))
