"""Who is calling: bearer tokens (JWT, HS256) carrying a role and the scope that role needs.

Inspectors carry their inspector id (they see only their cells' tasks); department users carry
their department id (they see and change only their department's cases). The HTTP side (who may
call a route) is ``shared.web.auth``.

Three kinds of token, told apart by their ``kind`` claim:

- an access token (``user``), from logging in: short-lived, and good only while its account is
  still in the directory with the same role, department and inspector, so a removed or moved
  user is refused at the next request, not when the token runs out;
- a refresh token (``refresh``), from logging in too: never a bearer for a route; it buys a new
  pair once (see ``shared.core.sessions``) until the session ends, hours later;
- a machine token (``machine``), minted with the secret itself by an operator's tool (``reconcile``,
  the benchmark) for a service account that is in no directory. Whoever holds the secret can sign
  any token, so checking these against the directory would protect nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from pwdlib import PasswordHash

from shared.core.clock import Clock
from shared.core.sessions import SessionStore

_ISSUER = "citycase"
_ALGORITHM = "HS256"
# Tokens from a process whose clock runs a little ahead are still good.
_CLOCK_SKEW_S = 60
# How often (in the clock's time) a process deletes the sessions that have ended.
_SWEEP_EVERY = timedelta(hours=1)


class Role(StrEnum):
    """The people and systems that use the platform."""

    INSPECTOR = "inspector"  # 网格监督员
    OPERATOR = "operator"  # 受理员
    DISPATCHER = "dispatcher"  # 派遣员
    SHIFT_LEAD = "shift_lead"  # 值班长
    DEPARTMENT = "department"  # 专业部门
    HOTLINE = "hotline"  # 12345 / 12319 systems
    VIDEO = "video"  # video detection systems


class TokenKind(StrEnum):
    """What a token is for (see the module's docstring)."""

    USER = "user"
    REFRESH = "refresh"
    MACHINE = "machine"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    username: str
    role: Role
    name: str
    department_id: str | None = None
    inspector_id: str | None = None


class InvalidToken(Exception):
    """The token is missing, malformed, expired, revoked or not ours."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user who can log in: a real deployment stores ``password_hash``; the demo city ships
    plain ``password`` values, which are for trying the platform out only.
    """

    principal: Principal
    password_hash: str | None = None
    password: str | None = None


class Directory:
    """The accounts that may obtain tokens."""

    _hasher = PasswordHash.recommended()

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._accounts = {account.principal.username: account for account in accounts}
        # An unknown name is checked against a hash too, so the time a refusal takes does not tell
        # a guesser which names exist.
        hashed = any(account.password_hash for account in self._accounts.values())
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16)) if hashed else None

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The principal when the password is right, else None."""
        account = self._accounts.get(username)
        if account is None:
            if self._decoy is not None:
                self._hasher.verify(password, self._decoy)
            return None
        if account.password_hash is not None:
            ok = self._hasher.verify(password, account.password_hash)
        else:
            ok = account.password is not None and hmac.compare_digest(account.password, password)
        return account.principal if ok else None

    def current(self, username: str) -> Principal | None:
        """The account's principal as the directory has it now; None once it has been removed."""
        account = self._accounts.get(username)
        return account.principal if account is not None else None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """What a verified refresh token says: whose it is and which use of which session it is."""

    principal: Principal
    session: str
    token_id: str
    expires_at: datetime


class TokenIssuer:
    """Issues and verifies the platform's bearer tokens, all signed with one secret.

    ``ttl`` is the life of an access or machine token. ``directory`` holds the accounts access
    tokens are checked against; an issuer without one (an operator's tool) accepts none.
    """

    def __init__(
        self, secret: str, clock: Clock, ttl: timedelta = timedelta(minutes=15), *, directory: Directory | None = None
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._directory = directory
        self.ttl = ttl

    def issue_access(self, principal: Principal) -> str:
        """An access token for an account of the directory, valid for ``ttl``."""
        return self._sign(TokenKind.USER, principal, self._clock.now() + self.ttl)

    def issue_machine(self, principal: Principal) -> str:
        """A machine token for a service account, valid for ``ttl`` and in no directory: for a
        tool that holds the secret (and so could sign anything anyway)."""
        return self._sign(TokenKind.MACHINE, principal, self._clock.now() + self.ttl)

    def issue_refresh(self, principal: Principal, session: str, token_id: str, expires_at: datetime) -> str:
        """A refresh token: use ``token_id`` of ``session``, until ``expires_at``."""
        return self._sign(TokenKind.REFRESH, principal, expires_at, sid=session, jti=token_id)

    def verify(self, token: str) -> Principal:
        """The caller an access or machine token speaks for; ``InvalidToken`` otherwise, and for
        an access token whose account is no longer in the directory as it was."""
        claims = self._decode(token)
        principal = _principal(claims)
        if claims["kind"] == TokenKind.MACHINE:
            return principal
        if claims["kind"] != TokenKind.USER:
            raise InvalidToken("not an access token")
        return self._still_current(principal)

    def verify_refresh(self, token: str) -> RefreshToken:
        """What a refresh token says; ``InvalidToken`` for anything else, expired or forged. Whether
        it was used before is the session store's to say."""
        claims = self._decode(token)
        if claims["kind"] != TokenKind.REFRESH:
            raise InvalidToken("not a refresh token")
        try:
            return RefreshToken(
                principal=_principal(claims),
                session=str(claims["sid"]),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except KeyError as exc:
            raise InvalidToken("incomplete refresh token") from exc

    def _still_current(self, principal: Principal) -> Principal:
        current = self._directory.current(principal.username) if self._directory is not None else None
        if current is None or _scope(current) != _scope(principal):
            raise InvalidToken("the account was removed or changed")
        return current

    def _sign(self, kind: TokenKind, principal: Principal, expires_at: datetime, **extra: str) -> str:
        claims = {
            "iss": _ISSUER,
            "kind": kind.value,
            "sub": principal.username,
            "role": principal.role.value,
            "name": principal.name,
            "dept": principal.department_id,
            "insp": principal.inspector_id,
            "iat": int(self._clock.now().timestamp()),
            "exp": int(expires_at.timestamp()),
            **extra,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            # Expiry is checked against the injected clock, so simulated time is honoured; so is the
            # issue time, which pyjwt would compare with the system clock and find in the future for
            # every token of a city simulated ahead of real time.
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["exp", "sub", "role", "kind"],
                },
            )
            now = self._clock.now().timestamp()
            if claims["exp"] < now:
                raise InvalidToken("the token has expired")
            if claims.get("iat", now) > now + _CLOCK_SKEW_S:
                raise InvalidToken("the token is not valid yet")
            return claims
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            username=claims["sub"],
            role=Role(claims["role"]),
            name=claims.get("name") or claims["sub"],
            department_id=claims.get("dept"),
            inspector_id=claims.get("insp"),
        )
    except (ValueError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc


def _scope(principal: Principal) -> tuple[Role, str | None, str | None]:
    return principal.role, principal.department_id, principal.inspector_id


@dataclass(frozen=True, slots=True)
class Grant:
    """What logging in (or refreshing) gives: an access token and the refresh token to use next."""

    principal: Principal
    access_token: str
    expires_in: timedelta
    refresh_token: str
    refresh_expires_in: timedelta


class Sessions:
    """Logging in, refreshing and logging out (OAuth2's password and refresh-token grants).

    A session lasts ``ttl`` from the log-in (a shift), however often it is refreshed; each refresh
    token is good once (``SessionStore``). Refreshing checks the account against the directory as
    access tokens are checked, so a removed or moved user cannot refresh either.
    """

    def __init__(
        self, directory: Directory, tokens: TokenIssuer, store: SessionStore, clock: Clock, ttl: timedelta
    ) -> None:
        self._directory = directory
        self._tokens = tokens
        self._store = store
        self._clock = clock
        self.ttl = ttl
        self._swept_at: datetime | None = None

    def log_in(self, username: str, password: str) -> Grant | None:
        """A new session's first grant when the password is right, else None."""
        principal = self._directory.authenticate(username, password)
        if principal is None:
            return None
        now = self._clock.now()
        if self._swept_at is None or now - self._swept_at >= _SWEEP_EVERY:
            self._store.sweep(now)
            self._swept_at = now
        # Whole seconds, as the tokens' ``exp`` claim, so the session's folder and its tokens agree.
        ends_at = datetime.fromtimestamp(int((now + self.ttl).timestamp()), UTC)
        session, token_id = self._store.open(ends_at)
        return self._grant(principal, session, token_id, ends_at)

    def refresh(self, refresh_token: str) -> Grant:
        """The next grant of the token's session; ``InvalidToken`` when the token is not good (used
        before, which also ends its session; expired; logged out; its account removed or moved)."""
        claims = self._tokens.verify_refresh(refresh_token)
        current = self._directory.current(claims.principal.username)
        if current is None or _scope(current) != _scope(claims.principal):
            self._store.end(claims.session)
            raise InvalidToken("the account was removed or changed")
        token_id = self._store.rotate(claims.session, claims.token_id)
        if token_id is None:
            raise InvalidToken("the refresh token was used before, or its session has ended")
        return self._grant(current, claims.session, token_id, claims.expires_at)

    def log_out(self, refresh_token: str) -> None:
        """End the token's session (its access tokens run out on their own, within minutes); a
        token that is not good already ends nothing."""
        try:
            claims = self._tokens.verify_refresh(refresh_token)
        except InvalidToken:
            return
        self._store.end(claims.session)

    def _grant(self, principal: Principal, session: str, token_id: str, ends_at: datetime) -> Grant:
        return Grant(
            principal=principal,
            access_token=self._tokens.issue_access(principal),
            expires_in=self._tokens.ttl,
            refresh_token=self._tokens.issue_refresh(principal, session, token_id, ends_at),
            refresh_expires_in=ends_at - self._clock.now(),
        )
