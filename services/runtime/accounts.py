"""Logging in: the city's accounts exchange a password for an access token and a refresh token at
``/auth/token``, a refresh token for the next pair at ``/auth/refresh``, and end the session at
``/auth/logout`` (OAuth2's password and refresh-token grants, RFC 6749 and RFC 7009's answer)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from shared.city.model import DemoUser
from shared.core.auth import Account, Grant, InvalidToken, Principal, Role, Sessions
from shared.web.auth import current_principal
from shared.web.limits import address_of, limits_of

# A refresh token is a few hundred characters; a form field far longer is not one.
_MAX_TOKEN_CHARS = 4096


class TokenOut(BaseModel):
    """An OAuth2 bearer token, the refresh token that buys the next one, and who they speak for."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    role: Role
    department_id: str | None
    inspector_id: str | None

    @classmethod
    def of(cls, grant: Grant) -> TokenOut:
        """The answer for ``grant``."""
        return cls(
            access_token=grant.access_token,
            expires_in=int(grant.expires_in.total_seconds()),
            refresh_token=grant.refresh_token,
            refresh_expires_in=int(grant.refresh_expires_in.total_seconds()),
            role=grant.principal.role,
            department_id=grant.principal.department_id,
            inspector_id=grant.principal.inspector_id,
        )


def account_of(user: DemoUser) -> Account:
    """The account of a user listed in the city's ``users.yaml``."""
    principal = Principal(
        username=user.username,
        role=Role(user.role.value),
        name=user.display_name,
        department_id=user.department_id,
        inspector_id=user.inspector_id,
    )
    return Account(principal=principal, password_hash=user.password_hash, password=user.password)


def auth_router(sessions: Sessions) -> APIRouter:
    """Log-in, refresh, log-out, and who-am-I."""
    router = APIRouter(prefix="/auth", tags=["auth"])

    # Password hashing and the session files are blocking work: done in a thread, they do not
    # hold up every other request of the process.

    @router.post("/token", summary="Exchange a username and password for a bearer token (OAuth2 password flow)")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request) -> TokenOut:
        """429 with ``Retry-After`` after too many attempts from one address, or too many wrong
        passwords for one account or from one address (then even the right one waits)."""
        limits, address = limits_of(request), address_of(request)
        rules = limits.rules
        limits.hit(rules.login_attempts_per_address, f"login:{address}", "log-in attempts")
        limits.ensure_below(rules.login_failures_per_account, f"login-failed:{form.username}", "failed log-ins")
        limits.ensure_below(rules.login_failures_per_address, f"login-failed:{address}", "failed log-ins")
        grant = await asyncio.to_thread(sessions.log_in, form.username, form.password)
        if grant is None:
            limits.hit(rules.login_failures_per_account, f"login-failed:{form.username}", "failed log-ins")
            limits.hit(rules.login_failures_per_address, f"login-failed:{address}", "failed log-ins")
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "wrong username or password", {"WWW-Authenticate": "Bearer"}
            )
        return TokenOut.of(grant)

    @router.post(
        "/refresh",
        summary="Exchange a refresh token for a new bearer token and refresh token (OAuth2 refresh-token grant)",
    )
    async def refresh(
        grant_type: Annotated[Literal["refresh_token"], Form()],
        refresh_token: Annotated[str, Form(max_length=_MAX_TOKEN_CHARS)],
    ) -> TokenOut:
        """Each refresh token is good once: a second use is refused and ends its session, as it
        means someone else holds a copy. 401 for any token that is not good, whatever the reason."""
        try:
            return TokenOut.of(await asyncio.to_thread(sessions.refresh, refresh_token))
        except InvalidToken as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the refresh token is not valid; log in again",
                {"WWW-Authenticate": "Bearer"},
            ) from exc

    @router.post("/logout", summary="End the session of a refresh token", status_code=status.HTTP_204_NO_CONTENT)
    async def logout(refresh_token: Annotated[str, Form(max_length=_MAX_TOKEN_CHARS)]) -> Response:
        """204 whatever the token (RFC 7009): whether it was good is nobody's business. The
        session's access tokens run out within minutes."""
        await asyncio.to_thread(sessions.log_out, refresh_token)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/me", summary="Who the bearer token speaks for")
    async def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str | None]:
        return {
            "username": principal.username,
            "role": principal.role.value,
            "name": principal.name,
            "department_id": principal.department_id,
            "inspector_id": principal.inspector_id,
        }

    return router
