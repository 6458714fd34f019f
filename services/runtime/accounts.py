"""Logging in: the city's accounts exchange a password for a bearer token at ``/auth/token``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from shared.city.model import DemoUser
from shared.core.auth import Account, Directory, Principal, Role, TokenIssuer
from shared.web.auth import current_principal


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
    return Account(principal=principal, password=user.password)


def auth_router(directory: Directory, tokens: TokenIssuer) -> APIRouter:
    """The login route, and who-am-I."""
    router = APIRouter(prefix="/auth", tags=["auth"])

    @router.post("/token", summary="Exchange a username and password for a bearer token (OAuth2 password flow)")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
        principal = directory.authenticate(form.username, form.password)
        if principal is None:
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
