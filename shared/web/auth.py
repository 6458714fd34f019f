"""Who may call a route: the bearer token as a FastAPI dependency, and the roles a route admits.

Routes declare the roles they admit with ``require(...)``; everything else is a 401 (no or bad
token) or a 403 (wrong role).
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
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    issuer: TokenIssuer = request.app.state.token_issuer
    try:
        return issuer.verify(credentials.credentials)
    except InvalidToken as exc:
        # Why a token failed (its signature, its expiry...) would help a forger, not a user.
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or expired token", {"WWW-Authenticate": "Bearer"}
        ) from exc


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only callers with one of ``roles``; 403 for the others."""
    admitted = frozenset(roles)

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in admitted:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value} may not do this; allowed: {', '.join(sorted(admitted))}",
            )
        return principal

    return dependency
