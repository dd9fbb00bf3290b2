"""An ASGI guard that refuses request bodies over the server's limit before any app code reads them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerbridge.web.bodies import declared_length
from ledgerbridge.web.errors import ApiError, json_error


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and declared_length(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            # a body without Content-Length is counted as it streams; the app's handler turns this into a 413
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ApiError(413, f"the request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = json_error(413, f"the request body is larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
