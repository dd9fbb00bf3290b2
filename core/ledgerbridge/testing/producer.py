"""The conformance kit's producer-side checks: what a plugin that publishes events (from its routes and
background tasks) must get right without a vendor on the other end.

Each check returns the problems it found, one sentence each, so the kit can list them all at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence

import httpx
from starlette.routing import BaseRoute, Mount, Route

from ledgerbridge.context import AccountContext
from ledgerbridge.events import decode_event
from ledgerbridge.models import encode_event, event_type
from ledgerbridge.testing.harness import PluginHarness

#: Methods whose requests carry a body.
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")

#: Bodies a route must refuse with a 4xx: (what it is, its content type, the bytes). An empty body is not
#: among them: an action with no parameters (disconnect) rightly accepts it.
MALFORMED_BODIES: tuple[tuple[str, str, bytes], ...] = (
    ("truncated JSON", "application/json", b'{"type": "InvoicePaid", "id": '),
    ("bytes that are not UTF-8", "application/json", b'{"id": "\xff\xfe"}'),
    ("JSON nested 5,000 deep", "application/json", b"[" * 5000 + b"]" * 5000),
    ("JSON of the wrong shape", "application/json", b'[1, "two", null]'),
    ("a broken multipart form", "multipart/form-data; boundary=kit", b"--kit\r\nnot a part"),
    ("a broken urlencoded form", "application/x-www-form-urlencoded", b"%%%=&=%zz&state"),
)

#: A query no GET route may answer with a 5xx (an OAuth callback's parameters, garbled).
MALFORMED_QUERY = "code=%FF%FE&state=&realmId=%00&error=%zz"

_PARAMETER = re.compile(r"{(\w+)(?::(\w+))?}")
_EXAMPLE_VALUES = {"int": "1", "float": "1.5", "uuid": "00000000-0000-4000-8000-000000000000"}


def route_paths(routes: Sequence[BaseRoute], account_id: str, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """Each HTTP route as (a concrete path, its methods); path parameters get example values, the account
    id for string parameters so account-scoped routes reach a real account."""
    for route in routes:
        if isinstance(route, Mount):
            yield from route_paths(route.routes, account_id, prefix + route.path)
        elif isinstance(route, Route):

            def value(match: re.Match[str]) -> str:
                return _EXAMPLE_VALUES.get(match.group(2) or "str", account_id)

            yield prefix + _PARAMETER.sub(value, route.path), set(route.methods or ())


async def malformed_requests(harness: PluginHarness, plugin: str, ctx: AccountContext) -> list[str]:
    """Send every route of `plugin` malformed bodies (and GET routes a garbled query) through the whole
    server, anonymously and as the signed-in admin (so checks behind sign-in are reached): a body route
    must answer each with a 4xx, and no route may answer with a 5xx."""
    runtime = harness.core
    routes = runtime.plugins.routes(plugin, runtime.plugin_context(plugin))
    app = harness.app()
    callers = {"": {}, " (as the admin)": {"authorization": f"Bearer {app.state.admin_token}"}}
    problems: list[str] = []
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=runtime.settings.base_url) as client:
        for path, methods in route_paths(routes, ctx.account_id, f"/plugins/{plugin}"):
            for who, headers in callers.items():
                for method in sorted(methods & set(BODY_METHODS)):
                    for what, content_type, body in MALFORMED_BODIES:
                        sent = {**headers, "content-type": content_type}
                        response = await client.request(method, path, content=body, headers=sent)
                        if not 400 <= response.status_code < 500:
                            problems.append(
                                f"{method} {path}{who} answered {what} with {response.status_code}, not a 4xx"
                            )
                if "GET" in methods:
                    response = await client.get(f"{path}?{MALFORMED_QUERY}", headers=headers)
                    if response.status_code >= 500:
                        problems.append(f"GET {path}{who} answered a garbled query with {response.status_code}")
    return problems


async def background_tasks_once(harness: PluginHarness, plugin: str, ctx: AccountContext, timeout: float) -> list[str]:
    """Run each of `plugin`'s background tasks once for `ctx`'s account; each must return, not raise."""
    runtime = harness.core
    problems = []
    for task in runtime.plugins.background_tasks(plugin, runtime.plugin_context(plugin)):
        try:
            await asyncio.wait_for(task.run(ctx), timeout)
        except TimeoutError:
            problems.append(f"background task {task.name!r} did not return within {timeout:.0f} s")
        except Exception as exc:
            problems.append(f"background task {task.name!r} raised {type(exc).__name__}: {exc}")
    return problems


def events_round_trip(harness: PluginHarness, plugin: str) -> list[str]:
    """Every event `plugin` published decodes back through the core to the same bytes, type and object.

    msgspec does not check field types when a Struct is built, so `Payment(payment_id=42)` publishes fine
    and only dead-letters when a consumer's delivery decodes it: this finds it at the producer."""
    problems = []
    for stored in harness.published(plugin):
        label = f"{stored.type} {stored.external_id!r}"
        try:
            event = decode_event(stored.payload)
        except Exception as exc:
            problems.append(f"published {label} does not decode: {exc}")
            continue
        if encode_event(event) != stored.payload:
            problems.append(f"published {label} encodes differently once decoded")
        if (event_type(event), event.object_key) != (stored.type, stored.object_key):
            problems.append(f"published {label} decodes as {event_type(event)} {event.object_key!r}")
    return problems
