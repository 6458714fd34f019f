"""Signing a request to another system and verifying one from it: pure, with the time passed in.

Two schemes, chosen per endpoint in ``integrations.yaml``:

- **standard-webhooks** (https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
  (seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  several space-separated during a secret's rotation. The ``standardwebhooks`` package computes the
  signature; its own ``verify`` is not used because it reads the wall clock (ours is injected, and
  a simulated city runs on another time) and fails with an exception of its own on a malformed
  header, where we answer which header is wrong.
- **app-key** (the ``appKey``/``timestamp``/``nonce``/``sign`` form common in Chinese government
  interfaces): ``X-App-Key``, ``X-Timestamp`` (milliseconds), ``X-Nonce`` (random, single use,
  at least 16 characters), ``X-Sign``: lowercase hex of HMAC-SHA256 or HMAC-SM3 (国密 SM3, through
  OpenSSL) of ``"{appKey}\\n{timestamp}\\n{nonce}\\n{body}"``. What we send also carries an
  ``Idempotency-Key``: the nonce changes with every attempt, the message does not.

A request is accepted when its timestamp is within five minutes of now, either way, and any one of
the endpoint's active secrets (one, or two during a rotation) reproduces its signature. Whether its
nonce was seen before is the receiver's to check (it keeps them in its own transaction).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from standardwebhooks import Webhook

from shared.core.errors import DomainError

# How far a request's timestamp may be from our clock, either way: wider lets a captured request
# be replayed longer (and the nonces must be kept that long), narrower refuses honest senders
# whose clocks drift.
TOLERANCE = timedelta(minutes=5)
# A nonce is stored for the replay check: an app-key nonce long enough to be unguessable (a
# webhook-id is the sender's message id, unique but not secret), either short enough to index.
MIN_NONCE_LENGTH = 16
MAX_NONCE_LENGTH = 128

# The headers of each scheme, lowercase (HTTP header names are case-insensitive).
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
APP_KEY = "x-app-key"
APP_TIMESTAMP = "x-timestamp"
APP_NONCE = "x-nonce"
APP_SIGN = "x-sign"
IDEMPOTENCY_KEY = "idempotency-key"

_WEBHOOK_SECRET_PREFIX = "whsec_"
# Standard Webhooks asks for secrets of 24 to 64 random bytes.
MIN_WEBHOOK_SECRET_BYTES = 24
MAX_WEBHOOK_SECRET_BYTES = 64


class Scheme(StrEnum):
    """How an endpoint signs its requests."""

    STANDARD_WEBHOOKS = "standard-webhooks"
    APP_KEY = "app-key"


class Algorithm(StrEnum):
    """The HMAC of the app-key scheme."""

    HMAC_SHA256 = "hmac-sha256"
    HMAC_SM3 = "hmac-sm3"

    @property
    def digest(self) -> str:
        """The name ``hmac.new`` knows it by."""
        return "sha256" if self is Algorithm.HMAC_SHA256 else "sm3"


def sm3_available() -> bool:
    """Whether this Python's OpenSSL computes SM3 (some builds leave the Chinese algorithms out)."""
    return "sm3" in hashlib.algorithms_available


def webhook_secret_bytes(secret: str) -> bytes:
    """The key of a Standard Webhooks secret ``whsec_<base64>``; ``ValueError`` saying what is wrong
    with it otherwise (never the secret itself)."""
    if not secret.startswith(_WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"a standard-webhooks secret starts with {_WEBHOOK_SECRET_PREFIX!r}")
    encoded = secret.removeprefix(_WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"a standard-webhooks secret is {_WEBHOOK_SECRET_PREFIX}<base64>") from None
    if not MIN_WEBHOOK_SECRET_BYTES <= len(key) <= MAX_WEBHOOK_SECRET_BYTES:
        raise ValueError(
            f"a standard-webhooks secret holds {MIN_WEBHOOK_SECRET_BYTES} to {MAX_WEBHOOK_SECRET_BYTES} "
            f"random bytes, this one {len(key)}"
        )
    return key


@dataclass(frozen=True)
class Secret:
    """One active secret, with the id it is known by in configuration and logs."""

    id: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class _Keys:
    """One side's scheme and secrets: what signs and what verifies are made of the same."""

    scheme: Scheme
    secrets: tuple[Secret, ...]
    algorithm: Algorithm = Algorithm.HMAC_SHA256
    app_key: str = ""

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError(f"a {type(self).__name__.lower()} needs a secret")
        if self.scheme is Scheme.APP_KEY and not self.app_key:
            raise ValueError(f"an app-key {type(self).__name__.lower()} needs the app key")


@dataclass(frozen=True)
class Signer(_Keys):
    """How we sign what we send to one endpoint.

    Standard Webhooks signs with every secret listed (the receiver accepts any, so a rotation
    can add the new secret before the receiver switches and drop the old one after); app-key has
    room for one signature and signs with the first.
    """


@dataclass(frozen=True)
class Verifier(_Keys):
    """How one sender signs what it sends us: its scheme and its active secrets (one or two)."""


@dataclass(frozen=True)
class Signed:
    """A request whose signature holds: its nonce (the ``webhook-id`` or ``X-Nonce``: the key of the
    receiver's replay check), its scheme, and which secret verified it (watch a rotation with it)."""

    nonce: str
    scheme: Scheme
    secret_id: str


class SignatureRefused(DomainError):
    """A signed request we do not accept; each subclass says why. The message names the header
    or the rule, never a secret or the signature we expected."""

    status = 401
    code = "signature_refused"


class UnknownHotline(SignatureRefused):
    """No hotline with this id is configured: there is no secret to verify with."""

    code = "unknown_hotline"


class MissingHeaders(SignatureRefused):
    """A header the scheme needs is absent or cannot be read."""

    code = "missing_signature_headers"


class StaleTimestamp(SignatureRefused):
    """The request's timestamp is more than five minutes from our clock, in the past or the future."""

    code = "stale_timestamp"


class BadSignature(SignatureRefused):
    """No active secret reproduces the request's signature (or the app key is not the sender's)."""

    code = "bad_signature"


class ReplayedNonce(SignatureRefused):
    """The nonce was used before: a replay, or a different request under a used webhook-id."""

    status = 409
    code = "replayed_nonce"


def sign(signer: Signer, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The headers that sign ``body`` for the endpoint of ``signer``, sent at ``at``.

    ``message_id`` is the message's idempotency key, the same on every attempt: the ``webhook-id``
    of Standard Webhooks, the ``Idempotency-Key`` of app-key (whose nonce is new every attempt, or
    the receiver would refuse a retry as a replay).
    """
    at = at.astimezone(UTC)
    if signer.scheme is Scheme.STANDARD_WEBHOOKS:
        text = _utf8(body)
        signatures = " ".join(Webhook(secret.value).sign(message_id, at, text) for secret in signer.secrets)
        return {
            WEBHOOK_ID: message_id,
            WEBHOOK_TIMESTAMP: str(int(at.timestamp())),
            WEBHOOK_SIGNATURE: signatures,
        }
    timestamp = str(int(at.timestamp() * 1000))
    nonce = uuid.uuid4().hex
    return {
        APP_KEY: signer.app_key,
        APP_TIMESTAMP: timestamp,
        APP_NONCE: nonce,
        APP_SIGN: app_key_signature(signer.algorithm, signer.secrets[0], signer.app_key, timestamp, nonce, body),
        IDEMPOTENCY_KEY: message_id,
    }


def verify(verifier: Verifier, headers: Mapping[str, str], body: bytes, now: datetime) -> Signed:
    """Check the signature of a request over its raw ``body`` (before anything parses it).

    Raises a :class:`SignatureRefused` saying why a request is refused: a missing or unreadable
    header, a timestamp more than five minutes from ``now``, a signature no active secret reproduces.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if verifier.scheme is Scheme.STANDARD_WEBHOOKS:
        return _verify_standard_webhooks(verifier, lowered, body, now)
    return _verify_app_key(verifier, lowered, body, now)


def app_key_signature(
    algorithm: Algorithm, secret: Secret, app_key: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """``X-Sign``: lowercase hex of HMAC-<algorithm>(secret, ``"{appKey}\\n{timestamp}\\n{nonce}\\n{body}"``)."""
    message = f"{app_key}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(secret.value.encode(), message, algorithm.digest).hexdigest()


def _verify_standard_webhooks(verifier: Verifier, headers: dict[str, str], body: bytes, now: datetime) -> Signed:
    message_id = _nonce(headers, WEBHOOK_ID, shortest=1)
    seconds = _whole_number(headers, WEBHOOK_TIMESTAMP, "seconds")
    signatures = _required(headers, WEBHOOK_SIGNATURE)
    sent_at = _instant(seconds, 1, WEBHOOK_TIMESTAMP)
    _check_fresh(sent_at, now, WEBHOOK_TIMESTAMP)
    # Compared as bytes after decoding, so base64 spelled with or without padding matches alike.
    offered = [_base64(signature) for version, _, signature in _entries(signatures) if version == "v1"]
    text = _utf8(body)
    for secret in verifier.secrets:
        expected = _base64(Webhook(secret.value).sign(message_id, sent_at, text).split(",", 1)[1])
        if any(hmac.compare_digest(expected, signature) for signature in offered):
            return Signed(nonce=message_id, scheme=Scheme.STANDARD_WEBHOOKS, secret_id=secret.id)
    raise BadSignature(f"no active secret of this sender reproduces {WEBHOOK_SIGNATURE}")


def _verify_app_key(verifier: Verifier, headers: dict[str, str], body: bytes, now: datetime) -> Signed:
    app_key = _required(headers, APP_KEY)
    milliseconds = _whole_number(headers, APP_TIMESTAMP, "milliseconds")
    nonce = _nonce(headers, APP_NONCE, shortest=MIN_NONCE_LENGTH)
    sign_header = _required(headers, APP_SIGN)
    _check_fresh(_instant(milliseconds, 1000, APP_TIMESTAMP), now, APP_TIMESTAMP)
    # Signed as sent (the sender's spelling of the number), not as we would print it.
    timestamp = headers[APP_TIMESTAMP].strip()
    if not hmac.compare_digest(app_key.encode(), verifier.app_key.encode()):
        raise BadSignature(f"{APP_KEY} is not this sender's app key")
    offered = sign_header.strip().lower().encode()
    for secret in verifier.secrets:
        expected = app_key_signature(verifier.algorithm, secret, app_key, timestamp, nonce, body)
        if hmac.compare_digest(expected.encode(), offered):
            return Signed(nonce=nonce, scheme=Scheme.APP_KEY, secret_id=secret.id)
    raise BadSignature(f"no active secret of this sender reproduces {APP_SIGN} ({verifier.algorithm})")


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise MissingHeaders(f"the {name} header is missing", {"header": name})
    return value


def _nonce(headers: dict[str, str], name: str, *, shortest: int) -> str:
    value = _required(headers, name)
    if not shortest <= len(value) <= MAX_NONCE_LENGTH or not value.isascii() or not value.isprintable():
        raise MissingHeaders(
            f"the {name} header is {shortest} to {MAX_NONCE_LENGTH} printable ASCII characters", {"header": name}
        )
    return value


def _whole_number(headers: dict[str, str], name: str, unit: str) -> int:
    value = _required(headers, name)
    if not (value.isascii() and value.isdigit()) or len(value) > 16:
        raise MissingHeaders(f"the {name} header is a Unix time in whole {unit}", {"header": name})
    return int(value)


def _instant(count: int, per_second: int, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(count / per_second, UTC)
    except (OverflowError, OSError, ValueError):
        raise StaleTimestamp(f"the {name} header is not a time near now", {"header": name}) from None


def _check_fresh(sent_at: datetime, now: datetime, name: str) -> None:
    if abs(sent_at - now) > TOLERANCE:
        raise StaleTimestamp(
            f"the {name} header is more than {int(TOLERANCE.total_seconds() // 60)} minutes from our clock",
            {"header": name, "sent_at": sent_at.isoformat(), "now": now.astimezone(UTC).isoformat()},
        )


def _entries(header: str) -> list[tuple[str, str, str]]:
    return [entry.partition(",") for entry in header.split(" ") if entry]


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return b""


def _utf8(body: bytes) -> str:
    # The signature covers the body as text (the package signs a str); JSON is UTF-8 anyway.
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise BadSignature("the body is not UTF-8 text, so no signature over it holds") from None
