"""The FastAPI application factory.

`create_app(settings)` builds a self-contained app: its own engine, Redis client and S3 storage on
`app.state.resources`. Nothing connects at import time, so importing this module is cheap and safe
(the dry-run boot gate relies on that). Serve it with `uvicorn --factory src.main:create_app`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.allowed_methods import AllowedMethodsMiddleware
from src.config import ConfigurationError, Settings, get_settings
from src.errors import error_response, install_error_handlers
from src.health import run_critical_gate
from src.resources import Resources, create_resources
from src.routers import health, journal, ping, reconciliation, statements
from src.upload_limit import BodyTooLargeError, RequestSizeLimitMiddleware

UPLOAD_FRIENDLY_SWITCH_INTERVAL_SECONDS = 0.001


class BootGateError(RuntimeError):
    """The critical boot gate failed; the app must not serve requests."""


async def enforce_critical_gate(resources: Resources) -> None:
    results = await run_critical_gate(resources)
    failures = [result for result in results if result.status == "error"]
    if failures:
        reasons = "; ".join(f"{result.name}: {result.message}" for result in failures)
        raise BootGateError(f"refusing to start: {reasons}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    resources: Resources = app.state.resources
    try:
        if resources.settings.boot_gate_on_startup:
            try:
                await enforce_critical_gate(resources)
            except BootGateError as error:
                app.state.boot_failure = str(error)
                raise
        yield
    finally:
        await resources.aclose()


class ConciseStartupFailure:
    """Report a failed boot gate as its one-line reason.

    Starlette fills the lifespan `startup.failed` message with the whole traceback, which the
    server prints; for a failed gate the reason is the whole story, and the traceback only hides it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_concise(message: Message) -> None:
            failure = getattr(scope["app"].state, "boot_failure", None)
            if message["type"] == "lifespan.startup.failed" and failure:
                message = {**message, "message": failure}
            await send(message)

        await self.app(scope, receive, send_concise)


async def body_too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLargeError)
    return error_response(413, "file_too_large", exc.detail)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app from `settings`, or from the environment when serving (uvicorn --factory)."""
    if settings is None:
        try:
            settings = get_settings()
        except ConfigurationError as error:
            # A typo in the environment deserves one line, not the server's traceback.
            raise SystemExit(f"error: {error}") from None
    # Uploads parse and format in worker threads. While one runs, the event loop waits up to the
    # GIL switch interval (5 ms by default) each time it needs the interpreter back, and a health
    # request needs it dozens of times; 1 ms keeps /api/health fast during a large upload.
    sys.setswitchinterval(UPLOAD_FRIENDLY_SWITCH_INTERVAL_SECONDS)
    # Libraries stay at WARNING; DEBUG only makes this app's own loggers chattier.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("src").setLevel(logging.DEBUG if settings.debug else logging.INFO)
    # FastAPIOffline: Swagger UI's script and styles come from the app (a package ships them), so
    # /api/docs works on a network without the public CDN.
    app = FastAPIOffline(
        title="Finance Report API",
        version="0.1.0",
        summary=f"{settings.otel_service_name}: statements, journal and reconciliation",
        docs_url="/api/docs",
        redoc_url=None,
        static_url="/api/docs-assets",
        openapi_url="/api/openapi.json",
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        lifespan=lifespan,
    )
    app.state.resources = create_resources(settings)
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLargeError, body_too_large)
    app.add_middleware(ConciseStartupFailure)
    app.add_middleware(AllowedMethodsMiddleware)
    app.add_middleware(RequestSizeLimitMiddleware, max_file_bytes=settings.max_upload_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    for router in (
        health.router,
        ping.router,
        statements.router,
        journal.router,
        reconciliation.router,
    ):
        app.include_router(router, prefix="/api")
    # `nox -s dev` prints the backend's address; opened in a browser, it leads to the API docs
    # instead of a 404. Not part of the API, so not in the OpenAPI document the frontend is typed from.
    app.add_api_route("/", docs_redirect, methods=["GET"], include_in_schema=False)
    return app


async def docs_redirect() -> RedirectResponse:
    """The bare address of the backend: where a person finds what it serves."""
    return RedirectResponse("/api/docs", status_code=307)
