"""Liveness and readiness probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    try:
        await runtime.store.list_accounts()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": f"store: {exc}"}, 503)
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "starting"}, 503)
    return JSONResponse({"status": "ready"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
