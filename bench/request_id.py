"""What the request-id middleware costs per request, against the same Starlette app without it, same run.

Calls the ASGI app directly in one event loop (no sockets, no server), so the figure is the middleware's own
cost, not loopback noise: a bare Starlette route answering a POST, then the same app with
`RequestIdMiddleware` outermost (as `create_app` puts it), with and without a client `X-Request-ID`, and on a
counted webhook path. Prints microseconds per request (min/median/max of the repeats) and the ratio to the
bare app's median.

    .venv/bin/python bench/request_id.py [--requests 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from ledgerbridge.observability.middleware import RequestIdMiddleware, webhook_paths
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message


async def ok(request: Request) -> Response:
    await request.body()
    return Response(b'{"stored":true}', media_type="application/json")


def application(with_middleware: bool) -> ASGIApp:
    app: ASGIApp = Starlette(routes=[Route("/plugins/hooks/webhooks", ok, methods=["POST"])])
    return RequestIdMiddleware(app, webhooks=webhook_paths(["hooks"])) if with_middleware else app


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/plugins/hooks/webhooks",
        "raw_path": b"/plugins/hooks/webhooks",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def run(app: ASGIApp, headers: list[tuple[bytes, bytes]], requests: int) -> float:
    """Microseconds per request."""
    body: Message = {"type": "http.request", "body": b'{"id":"1"}', "more_body": False}

    async def receive() -> Message:
        return body

    async def send(message: Message) -> None:
        return None

    request_scope = scope(headers)
    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(request_scope), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.requests} requests x {args.repeats} repeats, one event loop")
    cases = {
        "bare Starlette app": (application(False), []),
        "+ middleware, id made": (application(True), []),
        "+ middleware, client id": (application(True), [(b"x-request-id", b"lb-0123456789abcdef")]),
    }
    for app, headers in cases.values():  # warm up
        await run(app, headers, 1000)
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (app, headers) in cases.items():
            figures[name].append(await run(app, headers, args.requests))
    baseline = statistics.median(figures["bare Starlette app"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(
            f"{name:26} min {min(values):6.1f} us  median {median:6.1f} us  max {max(values):6.1f} us"
            f"  ratio {median / baseline:.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
