"""Typed domain errors; the API edge turns each into RFC 9457 problem JSON in one place."""

from __future__ import annotations


class TianwangError(Exception):
    """Base of every error the platform raises on purpose."""

    status = 500
    title = "Internal error"
    type_ = "about:blank"

    def __init__(self, detail: str = "", *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []


class ValidationFailed(TianwangError):
    status = 422
    title = "Validation failed"
    type_ = "urn:tianwang:problem:validation"


class InvalidDeviceId(ValidationFailed):
    title = "Invalid device ID"
    type_ = "urn:tianwang:problem:invalid-device-id"


class NotFound(TianwangError):
    status = 404
    title = "Not found"
    type_ = "urn:tianwang:problem:not-found"


class Conflict(TianwangError):
    status = 409
    title = "Conflict"
    type_ = "urn:tianwang:problem:conflict"


class Unauthorized(TianwangError):
    status = 401
    title = "Unauthorized"
    type_ = "urn:tianwang:problem:unauthorized"


class Forbidden(TianwangError):
    status = 403
    title = "Forbidden"
    type_ = "urn:tianwang:problem:forbidden"


class PayloadTooLarge(TianwangError):
    status = 413
    title = "Payload too large"
    type_ = "urn:tianwang:problem:too-large"


class ServiceUnavailable(TianwangError):
    status = 503
    title = "Service unavailable"
    type_ = "urn:tianwang:problem:unavailable"
