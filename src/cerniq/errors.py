"""One typed error hierarchy. Every error knows its HTTP status and renders as
``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any, ClassVar


class CerniqError(Exception):
    """Base of every error we raise on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code_override: str | None = code
        else:
            self.code_override = None

    @property
    def error_code(self) -> str:
        return self.code_override or self.code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.error_code, "message": self.message, "details": self.details}}


class ValidationFailed(CerniqError):
    status_code = 400
    code = "VALIDATION_ERROR"


class Unauthorized(CerniqError):
    status_code = 401
    code = "UNAUTHORIZED"


class Forbidden(CerniqError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(CerniqError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(CerniqError):
    status_code = 409
    code = "CONFLICT"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class RateLimited(CerniqError):
    status_code = 429
    code = "RATE_LIMITED"


class QuotaExceeded(CerniqError):
    status_code = 429
    code = "QUOTA_EXCEEDED"


class ServiceUnavailable(CerniqError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"


class EmergencyStopActive(Conflict):
    code = "EMERGENCY_STOP_ACTIVE"
