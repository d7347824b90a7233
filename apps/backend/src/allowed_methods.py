"""`Allow` names every method a path supports, for OPTIONS and for 405.

Starlette answers a path that exists but not for this method with the methods of the first route
it tried, so `/api/journal` (GET and POST, two routes) claimed `Allow: POST`; and a plain OPTIONS
(not a CORS preflight, which the CORS middleware answers before this) got 405. This middleware
collects the methods of every route matching the path instead.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# HEAD is left out: Starlette adds it to every GET route by itself, so it tells nothing new.
CANDIDATE_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(scope: Scope) -> list[str]:
    """The methods some route of `scope["app"]` fully matches for this path.

    Asked through `BaseRoute.matches` only (once per candidate method), because routes may be
    nested routers whose own route lists are private.
    """
    routes = scope["app"].routes
    return [
        method
        for method in CANDIDATE_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]


class AllowedMethodsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = allowed_methods(scope)
            # A path without routes stays a 404; a route that handles OPTIONS itself keeps it.
            if methods and "OPTIONS" not in methods:
                await Response(status_code=204, headers={"allow": ", ".join(methods)})(scope, receive, send)
                return

        async def send_with_allow(message: Message) -> None:
            # Only a 405 needs the full list; working it out for every request would be waste.
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(allowed_methods(scope)).encode()
                headers = [(name, value) for name, value in message.get("headers", []) if name != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow)]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
