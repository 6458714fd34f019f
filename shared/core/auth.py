"""Who is calling: bearer tokens (JWT, HS256) carrying a role and the scope that role needs.

Inspectors carry their inspector id (they see only their cells' tasks); department users carry
their department id (they see and change only their department's cases). The HTTP side (who may
call a route) is ``shared.web.auth``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import jwt
from pwdlib import PasswordHash

from shared.core.clock import Clock

_ISSUER = "citycase"
_ALGORITHM = "HS256"
# Tokens from a process whose clock runs a little ahead are still good.
_CLOCK_SKEW_S = 60


class Role(StrEnum):
    """The people and systems that use the platform."""

    INSPECTOR = "inspector"  # 网格监督员
    OPERATOR = "operator"  # 受理员
    DISPATCHER = "dispatcher"  # 派遣员
    SHIFT_LEAD = "shift_lead"  # 值班长
    DEPARTMENT = "department"  # 专业部门
    HOTLINE = "hotline"  # 12345 / 12319 systems
    VIDEO = "video"  # video detection systems


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    username: str
    role: Role
    name: str
    department_id: str | None = None
    inspector_id: str | None = None


class InvalidToken(Exception):
    """The token is missing, malformed, expired or not ours."""


class TokenIssuer:
    """Issues and verifies the platform's bearer tokens."""

    def __init__(self, secret: str, clock: Clock, ttl: timedelta = timedelta(hours=12)) -> None:
        self._secret = secret
        self._clock = clock
        self.ttl = ttl

    def issue(self, principal: Principal) -> str:
        """A signed token for ``principal``, valid for ``ttl`` from the clock's now."""
        now = self._clock.now()
        claims = {
            "iss": _ISSUER,
            "sub": principal.username,
            "role": principal.role.value,
            "name": principal.name,
            "dept": principal.department_id,
            "insp": principal.inspector_id,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal in a token; ``InvalidToken`` otherwise."""
        try:
            # Expiry is checked against the injected clock, so simulated time is honoured; so is the
            # issue time, which pyjwt would compare with the system clock and find in the future for
            # every token of a city simulated ahead of real time.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "role"]},
            )
            now = self._clock.now().timestamp()
            if claims["exp"] < now:
                raise InvalidToken("the token has expired")
            if claims.get("iat", now) > now + _CLOCK_SKEW_S:
                raise InvalidToken("the token is not valid yet")
            return Principal(
                username=claims["sub"],
                role=Role(claims["role"]),
                name=claims.get("name") or claims["sub"],
                department_id=claims.get("dept"),
                inspector_id=claims.get("insp"),
            )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc


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

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The principal when the password is right, else None."""
        account = self._accounts.get(username)
        if account is None:
            return None
        if account.password_hash is not None:
            ok = self._hasher.verify(password, account.password_hash)
        else:
            ok = account.password is not None and hmac.compare_digest(account.password, password)
        return account.principal if ok else None
