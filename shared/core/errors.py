"""Errors with names from the domain, each with the HTTP status it becomes at the edge."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of the errors a use case raises on purpose; never a 500."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The thing asked for does not exist, or is not the caller's to see."""

    status = 404
    code = "not_found"


class OutOfScope(DomainError):
    """The caller's role may do this, but not on this case (another department's, another cell's)."""

    status = 403
    code = "out_of_scope"


class IllegalTransition(DomainError):
    """The case is not in a state where this step is allowed."""

    status = 409
    code = "illegal_transition"

    def __init__(self, action: str, current_state: str, message: str | None = None) -> None:
        super().__init__(
            message or f"cannot {action} a case that is {current_state}",
            {"action": action, "current_state": current_state},
        )


class IdempotencyConflict(DomainError):
    """A key that makes a request safe to resend (a ``client_ref``, a work order number) came
    again with a different request: answering with the first one would drop the change silently."""

    status = 409
    code = "idempotency_key_reused"


class InvalidInput(DomainError):
    """The request is well-formed but its content is not acceptable (e.g. a point outside the city)."""

    status = 422
    code = "invalid_input"


class DependencyMissing(DomainError):
    """Configuration or a dependency the step needs is missing (e.g. calendar data for a year)."""

    status = 503
    code = "dependency_missing"
