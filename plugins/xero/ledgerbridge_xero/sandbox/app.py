"""The Starlette application: identity, Accounting API, control routes and the webhook sender's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import api, control, oauth, pages, persistence
from .config import SandboxConfig
from .engine import Sandbox

PERSIST_EVERY = 1.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _persist(engine: Sandbox, path: str) -> None:
    while True:
        await asyncio.sleep(PERSIST_EVERY)
        persistence.save(engine, path)


def create_app(config: SandboxConfig, sandbox: Sandbox | None = None) -> Starlette:
    """Build the sandbox app; `app.state.sandbox` is the engine. Works at / or under a Mount prefix."""
    engine = sandbox or Sandbox(config)
    if config.state_file:
        persistence.load(engine, config.state_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        workers = [asyncio.create_task(engine.dispatcher.run())]
        if config.state_file:
            workers.append(asyncio.create_task(_persist(engine, config.state_file)))
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            if config.state_file:
                persistence.save(engine, config.state_file)

    routes = [Route("/healthz", healthz), *oauth.routes, *api.routes, *control.routes, *pages.routes]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = engine
    return app
