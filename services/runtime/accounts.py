"""Logging in: the city's accounts exchange a password for a bearer token at ``/auth/token``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from shared.city.model import DemoUser
from shared.core.auth import Account, Directory, Principal, Role, TokenIssuer
from shared.web.auth import current_principal
from shared.web.limits import address_of, limits_of


class TokenOut(BaseModel):
    """An OAuth2 bearer token and who it speaks for."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: Role
    department_id: str | None
    inspector_id: str | None


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


def auth_router(directory: Directory, tokens: TokenIssuer) -> APIRouter:
    """The login route, and who-am-I."""
    router = APIRouter(prefix="/auth", tags=["auth"])

    @router.post("/token", summary="Exchange a username and password for a bearer token (OAuth2 password flow)")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request) -> TokenOut:
        """429 with ``Retry-After`` after too many attempts from one address, or too many wrong
        passwords for one account or from one address (then even the right one waits)."""
        limits, address = limits_of(request), address_of(request)
        rules = limits.rules
        limits.hit(rules.login_attempts_per_address, f"login:{address}", "log-in attempts")
        limits.ensure_below(rules.login_failures_per_account, f"login-failed:{form.username}", "failed log-ins")
        limits.ensure_below(rules.login_failures_per_address, f"login-failed:{address}", "failed log-ins")
        principal = directory.authenticate(form.username, form.password)
        if principal is None:
            limits.hit(rules.login_failures_per_account, f"login-failed:{form.username}", "failed log-ins")
            limits.hit(rules.login_failures_per_address, f"login-failed:{address}", "failed log-ins")
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "wrong username or password", {"WWW-Authenticate": "Bearer"}
            )
        return TokenOut(
            access_token=tokens.issue(principal),
            expires_in=int(tokens.ttl.total_seconds()),
            role=principal.role,
            department_id=principal.department_id,
            inspector_id=principal.inspector_id,
        )

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
