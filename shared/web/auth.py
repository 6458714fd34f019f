"""Who may call a route: the bearer token as a FastAPI dependency, and the roles a route admits.

Routes declare the roles they admit with ``require(...)``; everything else is a 401 (no or bad
token) or a 403 (wrong role). The answers say no more than that: which check a token failed (its
signature, its expiry, its account) or which roles a route admits would help a forger, not a user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.core.auth import InvalidToken, Principal, Role, TokenIssuer

_bearer = HTTPBearer(auto_error=False)
# Where the request guard (``shared.web.guard``) leaves the caller it verified, in the ASGI scope.
VERIFIED_CALLER = "citycase.caller"
# The one 401 for a missing, malformed, forged, expired or revoked token, and the one 403.
UNAUTHORIZED = "a valid bearer token is required"
FORBIDDEN = "this account may not do this"


# The dependencies are coroutines although they never wait: FastAPI runs plain functions in a
# thread pool, and two thread hand-offs per request cost more than the rest of a simple route.


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from the ``Authorization: Bearer`` header; 401 without a valid token (the
    process's request guard may have verified it already, before the body was read)."""
    verified = request.scope.get("state", {}).get(VERIFIED_CALLER)
    if isinstance(verified, Principal):
        return verified
    issuer: TokenIssuer = request.app.state.token_issuer
    try:
        if credentials is None:
            raise InvalidToken("no bearer token")
        return issuer.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}) from exc


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only callers with one of ``roles``; 403 for the others."""
    admitted = frozenset(roles)

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in admitted:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return principal

    return dependency
