"""Every error leaves the API as JSON `{detail, code}`: `detail` for people, `code` for programs.

The handlers below cover the app's own errors, Starlette's HTTP errors (404, 405, ...), request
validation (422), a lost database connection (503: retryable, unlike a bug) and anything unexpected
(500), so no path returns HTML or a bare string.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import InterfaceError as DriverInterfaceError
from psycopg import OperationalError as DriverOperationalError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError as SqlInterfaceError
from sqlalchemy.exc import OperationalError as SqlOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The shape of every error response."""

    detail: str
    code: str


class ApiError(Exception):
    """An error the API reports on purpose, with its status and a stable machine-readable code."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail


# Failures of the connection rather than of the statement: the server went away, the socket was
# cut, the connection pool could not connect. Raised by SQLAlchemy, or by psycopg when the app
# talks to the driver directly (the statement COPY).
CONNECTION_FAILURES: tuple[type[Exception], ...] = (
    SqlOperationalError,
    SqlInterfaceError,
    DriverOperationalError,
    DriverInterfaceError,
)
RETRY_AFTER_SECONDS = "1"


def is_connection_failure(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, CONNECTION_FAILURES)


def database_unavailable_error(detail: str = "the database is unavailable; try again") -> ApiError:
    return ApiError(503, "database_unavailable", detail)


def error_response(status_code: int, code: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content={"detail": detail, "code": code},
        headers=headers,
    )


def code_for_status(status_code: int) -> str:
    """`not_found`, `method_not_allowed`, ...: the HTTP phrase as an identifier."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return "http_error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


def describe_request_errors(exc: RequestValidationError) -> str:
    """`body.amount: Input should be ...` for each problem; the raw input is left out because it
    may be binary and because echoing it back helps no one."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{location}: {error.get('msg', 'invalid value')}")
    return "; ".join(problems) or "invalid request"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"retry-after": RETRY_AFTER_SECONDS} if exc.status_code == 503 else None
    return error_response(exc.status_code, exc.code, exc.detail, headers)


async def _connection_failure(request: Request, exc: Exception) -> JSONResponse:
    # Logged without the traceback: the cause is outside the app, and the message names it.
    logger.error("database connection failed on %s %s: %s", request.method, request.url.path, exc)
    return await _api_error(request, database_unavailable_error())


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, code_for_status(exc.status_code), str(exc.detail), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", describe_request_errors(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for failure in CONNECTION_FAILURES:
        app.add_exception_handler(failure, _connection_failure)
    app.add_exception_handler(Exception, _unexpected_error)


# Declared on every router so the OpenAPI document describes the error bodies clients really get.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": HTTPStatus(status).phrase} for status in (400, 404, 405, 422, 500, 503)
}
