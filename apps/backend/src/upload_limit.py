"""Reject oversized request bodies, announced or not, before they are read whole.

Starlette buffers a whole multipart body to disk before a handler runs, so the handler's own size
check comes too late to save the work. A request announcing a Content-Length above the limit is
answered 413 at once; a body without a length (chunked) is counted as it arrives, and the request
fails with 413 the moment it passes the limit, instead of after spooling hundreds of megabytes.

Starlette's own RequestBodyLimitMiddleware (FastAPI's `max_body_size`) counts too, but replaces
every response to an over-long announced body with a plain-text 413, so the API's JSON error
shape would be lost; hence this small middleware.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.errors import error_response

# Multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class BodyTooLargeError(HTTPException):
    """Raised from `receive` once the body passes the limit; an HTTPException, so that FastAPI's
    body parsing lets it through and the app's 413 handler answers it in the API's JSON shape."""

    def __init__(self, max_file_bytes: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {max_file_bytes} bytes")


class RequestSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_file_bytes: int) -> None:
        self.app = app
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                response = error_response(
                    413,
                    "file_too_large",
                    f"request body is larger than the limit of {self.max_file_bytes} bytes",
                )
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_file_bytes)
            return message

        await self.app(scope, counting_receive, send)
