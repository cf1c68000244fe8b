"""One error shape for every HTTP error: ``ErrorBody`` (``{error, message, request_id, details}``).

Services raise the typed `ApiError` subclasses from their service layer or dependencies; `install_error_handlers`
renders those, FastAPI's validation errors, Starlette's ``HTTPException`` (404 for unknown paths, 405…) and any
unexpected exception in that one shape. 5xx bodies say nothing about the cause: the stack trace goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from captionqc.runtime.http.context import current_request_id
from captionqc.schemas.api import ErrorBody, ErrorDetail, error_body

log = logging.getLogger("captionqc.http")

# Codes for statuses Starlette/FastAPI raise on their own (routing, methods, content types).
_CODES_BY_STATUS: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with its HTTP status, a machine-readable code and a message for a person."""

    status_code: ClassVar[int] = 400
    error: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status_code = 400
    error = "bad_request"


class Unauthorized(ApiError):
    """No credentials, or credentials that do not verify. Always carries ``WWW-Authenticate``."""

    status_code = 401
    error = "unauthorized"

    def __init__(self, message: str, *, www_authenticate: str = 'Bearer realm="captionqc"') -> None:
        super().__init__(message, headers={"WWW-Authenticate": www_authenticate})


class Forbidden(ApiError):
    status_code = 403
    error = "forbidden"


class NotFound(ApiError):
    status_code = 404
    error = "not_found"


class Conflict(ApiError):
    status_code = 409
    error = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    error = "payload_too_large"


class InvalidInput(ApiError):
    """The request is well-formed JSON but breaks a rule; ``details`` name the field (``loc``) and the rule."""

    status_code = 422
    error = "validation_error"


class ServiceUnavailable(ApiError):
    status_code = 503
    error = "unavailable"


def error_response(
    status_code: int,
    error: str,
    message: str,
    *,
    details: Sequence[ErrorDetail | Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = error_body(error, message, request_id=current_request_id(), details=list(details))
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def internal_error_response() -> JSONResponse:
    return error_response(500, "internal_error", "An internal error occurred; quote the request id when reporting it.")


def validation_details(errors: Sequence[Any]) -> list[ErrorDetail]:
    """Pydantic/FastAPI errors → ``ErrorDetail``; the offending input is never echoed back (it may hold secrets)."""
    details = []
    for err in errors:
        loc = [part if isinstance(part, int) else str(part) for part in err.get("loc", ())]
        details.append(ErrorDetail(loc=loc, msg=str(err.get("msg", "")), type=str(err.get("type", "value_error"))))
    return details


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status_code >= 500:
        log.error("request failed: %s", exc.message, exc_info=exc)
        response = error_response(exc.status_code, exc.error, "The service is unavailable; retry later.")
        response.headers.update(exc.headers)
        return response
    return error_response(exc.status_code, exc.error, exc.message, details=exc.details, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422, "validation_error", "The request is not valid.", details=validation_details(list(exc.errors()))
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status >= 500:
        log.error("request failed with HTTP %s: %s", status, exc.detail)
        return internal_error_response() if status == 500 else error_response(status, "unavailable", "Retry later.")
    code = _CODES_BY_STATUS.get(status, "error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(status, code, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return internal_error_response()


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the ``ErrorBody`` shape (the request-context middleware catches the rest)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting ``statuses`` with the ``ErrorBody`` model."""
    return {status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}


__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Unauthorized",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "internal_error_response",
    "validation_details",
]
