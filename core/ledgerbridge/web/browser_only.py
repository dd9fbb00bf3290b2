"""Middleware that only browsers need (the session cookie, its guard, the CSRF check), skipped for the plugins'
webhook routes, which no browser calls and which must stay cheap: vendors send them by the thousand."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send


class BrowserOnly:
    def __init__(self, app: ASGIApp, middleware: Sequence[Middleware], skip_paths: Collection[str]) -> None:
        self.direct = app
        self.skip_paths = frozenset(skip_paths)
        wrapped = app
        for cls, args, kwargs in reversed(middleware):
            wrapped = cls(wrapped, *args, **kwargs)
        self.wrapped = wrapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.skip_paths:
            await self.direct(scope, receive, send)
        else:
            await self.wrapped(scope, receive, send)
