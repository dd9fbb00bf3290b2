"""A request id for every HTTP request, and the webhook counters: one pure-ASGI middleware, outermost.

It takes the client's `X-Request-ID` when it is a sane token (at most 128 characters of letters, digits and
`-_.:`) or makes one, sets it in the request's context (`ledgerbridge.observability.context`), and returns it
in the response. An event published while handling the request keeps it. On a plugin's webhook route
(`POST /plugins/<name>/webhooks`) it also counts the webhook, refused or not, by the response's status.
Cheap on the intake path: no await of its own, one header read and one written.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerbridge.observability.context import reset_request_id, set_request_id
from ledgerbridge.observability.metrics import count_webhook

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}").fullmatch
#: ids made here: a random prefix per process (unique across replicas) and a counter (cheaper than uuid4)
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> bytes:
    return f"{_PREFIX}{next(_COUNTER):016x}".encode()


def webhook_paths(plugins: Iterable[str]) -> dict[str, str]:
    """The webhook route of each plugin, by the path every built-in plugin uses."""
    return {f"/plugins/{name}/webhooks": name for name in plugins}


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, webhooks: dict[str, str] | None = None) -> None:
        self.app = app
        self.webhooks = webhooks or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        for name, value in scope["headers"]:
            if name == HEADER:
                if _SANE(value):
                    request_id = value
                break
        if not request_id:
            request_id = new_request_id()
        plugin = self.webhooks.get(scope["path"]) if scope["method"] == "POST" else None
        counted = plugin is None

        async def send_with_id(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id)]
                if not counted:
                    counted = True
                    count_webhook(plugin or "", message["status"])
            await send(message)

        token = set_request_id(request_id.decode())
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not counted:  # answered 500 by the server's error handler, outside this middleware
                count_webhook(plugin or "", 500)
            raise
        finally:
            reset_request_id(token)
