"""Reject oversized request bodies before they are read.

Starlette buffers a whole multipart body to disk before a handler runs, so the handler's own size
check comes too late to save the work. Requests that announce a Content-Length above the limit are
answered 413 here; bodies without a length are still capped by the handler.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from src.errors import error_response

# Multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class RequestSizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_file_bytes: int) -> None:
        self.app = app
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                    response = error_response(
                        413,
                        "file_too_large",
                        f"request body is larger than the limit of {self.max_file_bytes} bytes",
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
