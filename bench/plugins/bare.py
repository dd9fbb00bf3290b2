"""The baseline: a bare Starlette endpoint that reads and parses the same body and acknowledges it."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    body = json.loads(await request.body())
    return JSONResponse({"stored": bool(body["webhookId"])})


app = Starlette(routes=[Route("/plugins/intake_source/webhooks", receive, methods=["POST"])])
