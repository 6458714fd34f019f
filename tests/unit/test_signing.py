"""Signing and verifying a webhook: Standard Webhooks and the app-key scheme (HMAC-SHA256, HMAC-SM3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.integration.signing import (
    Algorithm,
    BadSignature,
    MissingHeaders,
    ReplayedNonce,
    Scheme,
    Secret,
    SignatureRefused,
    Signer,
    StaleTimestamp,
    Verifier,
    sign,
    verify,
    webhook_secret_bytes,
)

NOW = datetime(2026, 5, 6, 1, 2, 3, tzinfo=UTC)
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SECRET_A = Secret("2026a", "whsec_" + base64.b64encode(KEY_A).decode())
SECRET_B = Secret("2026b", "whsec_" + base64.b64encode(KEY_B).decode())
BODY = '{"work_order":"GD-1","description":"井盖缺失"}'.encode()
MESSAGE_ID = "msg_2w5c8f0d5e3a4b1c"


def _webhooks(*secrets: Secret) -> Verifier:
    return Verifier(Scheme.STANDARD_WEBHOOKS, secrets)


def _app_key(algorithm: Algorithm, *secrets: Secret) -> Verifier:
    return Verifier(Scheme.APP_KEY, secrets, algorithm, app_key="ak-12345")


def _by_hand(key: bytes, message_id: str, seconds: int, body: bytes) -> str:
    """The Standard Webhooks formula, written out: v1,base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))."""
    digest = hmac.new(key, f"{message_id}.{seconds}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_standard_webhooks_signature_is_the_specs_formula() -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW, BODY)
    seconds = int(NOW.timestamp())
    assert headers == {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": str(seconds),
        "webhook-signature": _by_hand(KEY_A, MESSAGE_ID, seconds, BODY),
    }


def test_a_signature_made_by_hand_verifies() -> None:
    seconds = int(NOW.timestamp())
    headers = {
        "Webhook-Id": MESSAGE_ID,
        "Webhook-Timestamp": str(seconds),
        "Webhook-Signature": _by_hand(KEY_A, MESSAGE_ID, seconds, BODY),
    }
    signed = verify(_webhooks(SECRET_A), headers, BODY, NOW)
    assert (signed.nonce, signed.scheme, signed.secret_id) == (MESSAGE_ID, Scheme.STANDARD_WEBHOOKS, "2026a")


def test_a_time_with_another_offset_signs_the_same_instant() -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    assert sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, beijing, BODY) == sign(
        Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW, BODY
    )


@pytest.mark.parametrize("scheme_verifier", ["webhooks", "sha256", "sm3"])
def test_either_of_two_active_secrets_verifies(scheme_verifier: str) -> None:
    both = (
        _webhooks(SECRET_A, SECRET_B)
        if scheme_verifier == "webhooks"
        else _app_key(Algorithm(f"hmac-{scheme_verifier}"), SECRET_A, SECRET_B)
    )
    for secret in (SECRET_A, SECRET_B):
        signer = Signer(both.scheme, (secret,), both.algorithm, both.app_key)
        assert verify(both, sign(signer, MESSAGE_ID, NOW, BODY), BODY, NOW).secret_id == secret.id
    retired = Secret("2025", "whsec_" + base64.b64encode(bytes(32)).decode())
    signer = Signer(both.scheme, (retired,), both.algorithm, both.app_key)
    with pytest.raises(BadSignature):
        verify(both, sign(signer, MESSAGE_ID, NOW, BODY), BODY, NOW)


def test_a_rotating_sender_signs_with_each_secret_and_a_receiver_with_either_accepts() -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_B, SECRET_A)), MESSAGE_ID, NOW, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(_webhooks(SECRET_A), headers, BODY, NOW).secret_id == "2026a"
    assert verify(_webhooks(SECRET_B), headers, BODY, NOW).secret_id == "2026b"


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(minutes=-5), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(minutes=5, seconds=1), False),
    ],
)
def test_standard_webhooks_timestamps_within_five_minutes_either_way(offset: timedelta, accepted: bool) -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW + offset, BODY)
    if accepted:
        verify(_webhooks(SECRET_A), headers, BODY, NOW)
    else:
        with pytest.raises(StaleTimestamp, match="webhook-timestamp"):
            verify(_webhooks(SECRET_A), headers, BODY, NOW)


@pytest.mark.parametrize(
    ("offset_ms", "accepted"), [(-300_000, True), (300_000, True), (-300_001, False), (300_001, False)]
)
def test_app_key_timestamps_within_five_minutes_to_the_millisecond(offset_ms: int, accepted: bool) -> None:
    verifier = _app_key(Algorithm.HMAC_SHA256, SECRET_A)
    headers = sign(Signer(Scheme.APP_KEY, (SECRET_A,), app_key="ak-12345"), MESSAGE_ID, NOW, BODY)
    headers["x-timestamp"] = str(int(NOW.timestamp() * 1000) + offset_ms)
    headers["x-sign"] = _app_key_by_hand(
        Algorithm.HMAC_SHA256, SECRET_A.value, "ak-12345", headers["x-timestamp"], headers["x-nonce"]
    )
    if accepted:
        assert verify(verifier, headers, BODY, NOW).nonce == headers["x-nonce"]
    else:
        with pytest.raises(StaleTimestamp, match="x-timestamp"):
            verify(verifier, headers, BODY, NOW)


def _app_key_by_hand(algorithm: Algorithm, secret: str, app_key: str, timestamp: str, nonce: str) -> str:
    message = f"{app_key}\n{timestamp}\n{nonce}\n".encode() + BODY
    return hmac.new(secret.encode(), message, algorithm.digest).hexdigest()


def test_hmac_sm3_known_answer() -> None:
    assert hmac.new(b"k", b"abc", "sm3").hexdigest() == (
        "af684d81732e81f6a9c5dd0aa68f27667b36debcebe29e094a654c3d496a898a"
    )


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_app_key_signature_is_the_documented_string_and_carries_an_idempotency_key(algorithm: Algorithm) -> None:
    secret = Secret("k1", "a-long-app-secret")
    headers = sign(Signer(Scheme.APP_KEY, (secret,), algorithm, "ak-12345"), MESSAGE_ID, NOW, BODY)
    assert headers["x-app-key"] == "ak-12345"
    assert headers["x-timestamp"] == str(int(NOW.timestamp() * 1000))
    assert len(headers["x-nonce"]) >= 16
    assert headers["idempotency-key"] == MESSAGE_ID
    assert headers["x-sign"] == _app_key_by_hand(
        algorithm, "a-long-app-secret", "ak-12345", headers["x-timestamp"], headers["x-nonce"]
    )
    assert verify(_app_key(algorithm, secret), headers, BODY, NOW).nonce == headers["x-nonce"]


def test_each_app_key_attempt_has_a_new_nonce_so_a_retry_is_no_replay() -> None:
    signer = Signer(Scheme.APP_KEY, (SECRET_A,), app_key="ak-12345")
    first, second = (sign(signer, MESSAGE_ID, NOW, BODY) for _ in range(2))
    assert first["x-nonce"] != second["x-nonce"]
    assert first["idempotency-key"] == second["idempotency-key"] == MESSAGE_ID


def test_sm3_and_sha256_signatures_are_not_interchangeable() -> None:
    headers = sign(Signer(Scheme.APP_KEY, (SECRET_A,), Algorithm.HMAC_SHA256, "ak-12345"), MESSAGE_ID, NOW, BODY)
    with pytest.raises(BadSignature, match="hmac-sm3"):
        verify(_app_key(Algorithm.HMAC_SM3, SECRET_A), headers, BODY, NOW)


@pytest.mark.parametrize("scheme", list(Scheme))
def test_a_tampered_body_is_refused(scheme: Scheme) -> None:
    verifier = _webhooks(SECRET_A) if scheme is Scheme.STANDARD_WEBHOOKS else _app_key(Algorithm.HMAC_SM3, SECRET_A)
    headers = sign(Signer(scheme, (SECRET_A,), verifier.algorithm, verifier.app_key), MESSAGE_ID, NOW, BODY)
    with pytest.raises(BadSignature) as refused:
        verify(verifier, headers, BODY.replace(b"GD-1", b"GD-2"), NOW)
    assert refused.value.status == 401
    assert SECRET_A.value not in refused.value.message


def test_another_senders_app_key_is_refused() -> None:
    headers = sign(Signer(Scheme.APP_KEY, (SECRET_A,), app_key="ak-other"), MESSAGE_ID, NOW, BODY)
    with pytest.raises(BadSignature, match="app key"):
        verify(_app_key(Algorithm.HMAC_SHA256, SECRET_A), headers, BODY, NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_headers_are_named(missing: str) -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW, BODY)
    del headers[missing]
    with pytest.raises(MissingHeaders, match=missing) as refused:
        verify(_webhooks(SECRET_A), headers, BODY, NOW)
    assert refused.value.status == 401


@pytest.mark.parametrize("missing", ["x-app-key", "x-timestamp", "x-nonce", "x-sign"])
def test_app_key_missing_headers_are_named(missing: str) -> None:
    headers = sign(Signer(Scheme.APP_KEY, (SECRET_A,), app_key="ak-12345"), MESSAGE_ID, NOW, BODY)
    del headers[missing]
    with pytest.raises(MissingHeaders, match=missing):
        verify(_app_key(Algorithm.HMAC_SHA256, SECRET_A), headers, BODY, NOW)


@pytest.mark.parametrize(
    ("header", "value", "refusal"),
    [
        ("webhook-timestamp", "1.5e9", MissingHeaders),
        ("webhook-timestamp", "-1", MissingHeaders),
        ("webhook-timestamp", "9999999999999999", StaleTimestamp),
        ("webhook-id", "m" * 129, MissingHeaders),
        ("webhook-signature", "v1", BadSignature),
        ("webhook-signature", "v1,not base64!", BadSignature),
        ("webhook-signature", "v2," + base64.b64encode(bytes(32)).decode(), BadSignature),
    ],
)
def test_unreadable_headers_are_refused_never_a_crash(header: str, value: str, refusal: type[SignatureRefused]) -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW, BODY)
    headers[header] = value
    with pytest.raises(refusal):
        verify(_webhooks(SECRET_A), headers, BODY, NOW)


def test_a_body_that_is_not_utf8_is_refused() -> None:
    headers = sign(Signer(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)), MESSAGE_ID, NOW, BODY)
    with pytest.raises(BadSignature, match="UTF-8"):
        verify(_webhooks(SECRET_A), headers, b"\xff\xfe", NOW)


def test_a_replayed_nonce_is_a_conflict_not_an_authentication_failure() -> None:
    assert ReplayedNonce("replayed").status == 409
    assert issubclass(ReplayedNonce, SignatureRefused)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("c2VjcmV0", "whsec_"),
        ("whsec_###", "base64"),
        ("whsec_" + base64.b64encode(bytes(8)).decode(), "24 to 64"),
    ],
)
def test_webhook_secrets_are_checked_without_repeating_them(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as wrong:
        webhook_secret_bytes(secret)
    assert secret not in str(wrong.value)


def test_secrets_stay_out_of_reprs() -> None:
    assert SECRET_A.value not in repr(Verifier(Scheme.STANDARD_WEBHOOKS, (SECRET_A,)))


def test_an_app_key_nonce_is_long_enough_to_be_unguessable() -> None:
    headers = sign(Signer(Scheme.APP_KEY, (SECRET_A,), app_key="ak-12345"), MESSAGE_ID, NOW, BODY)
    headers["x-nonce"] = "0123456789abcde"
    headers["x-sign"] = _app_key_by_hand(
        Algorithm.HMAC_SHA256, SECRET_A.value, "ak-12345", headers["x-timestamp"], headers["x-nonce"]
    )
    with pytest.raises(MissingHeaders, match="x-nonce header is 16 to 128"):
        verify(_app_key(Algorithm.HMAC_SHA256, SECRET_A), headers, BODY, NOW)
