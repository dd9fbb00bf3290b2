"""The Starlette application: HighLevel API v2 routes, OAuth, the control API, health."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import (
    contacts,
    control,
    conversations,
    invoices,
    oauth,
    pages,
    payments,
    products,
)
from ledgerbridge_crmconnect.sandbox.config import SandboxConfig
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer in HighLevel's error shape (never HTML)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Cannot {request.method} {request.url.path}" if status == 404 else str(getattr(exc, "detail", exc))
    return ApiError(status, message).response()


def create_app(config: SandboxConfig) -> Starlette:
    """Build the sandbox. Works at / and under a Starlette Mount; `app.state.sandbox` is the engine.

    A mounted app gets no lifespan of its own, so webhook delivery also starts lazily on the first request;
    a parent app can call `async with app.state.sandbox.running(): …` in its own lifespan to stop it cleanly.
    """
    engine = SandboxEngine(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine.running():
            yield

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *contacts.routes,
        *invoices.routes,
        *payments.routes,
        *products.routes,
        *conversations.routes,
        *oauth.routes,
        *control.routes,
        *pages.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.sandbox = engine
    return app
