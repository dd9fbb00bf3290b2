"""Bearer tokens, the Version header, rate limits and injected faults, applied to every API endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.util import ApiError, json_body

CONTACTS_VERSION = "2021-07-28"  # also invoices, payments, products
CONVERSATIONS_VERSION = "2021-04-15"

INVALID_TOKEN = "Invalid token: access token is invalid"
NO_LOCATION_ACCESS = "The token does not have access to this location"


@dataclass
class Ctx:
    """Who is calling (resolved from the bearer) and what they sent."""

    engine: SandboxEngine
    location_id: str
    client: str
    body: dict[str, Any] = field(default_factory=dict)

    def require_location(self, location_id: Any, name: str = "locationId") -> str:
        """Every account-scoped lookup is scoped: a token only reaches its own location."""
        if not isinstance(location_id, str) or not location_id:
            raise ApiError(422, [f"{name} should not be empty", f"{name} must be a string"])
        if location_id != self.location_id:
            raise ApiError(403, NO_LOCATION_ACCESS)
        return location_id


Handler = Callable[[Request, Ctx], Response]


def authenticate(engine: SandboxEngine, request: Request) -> tuple[str, str]:
    """(client key, location id) for the bearer, or a 401 in HighLevel's words."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, INVALID_TOKEN)
    token = token.strip()
    with engine.lock:
        location_id = engine.state.pit_tokens.get(token)
        if location_id is not None:
            return f"pit:{token}", location_id
        record = engine.state.access_tokens.get(token)
    if record is None or record["expiresAt"] <= time.time():
        raise ApiError(401, INVALID_TOKEN)
    if record["userType"] != "Location" or not record.get("locationId"):
        raise ApiError(401, "This route is not yet supported by the IAM Service.")
    return f"oauth:{record['clientId']}", record["locationId"]


def check_version(request: Request, expected: str) -> None:
    version = request.headers.get("version")
    if not version:
        raise ApiError(422, ["version header is required", f"version must be one of the following values: {expected}"])
    if version != expected:
        raise ApiError(422, [f"version must be one of the following values: {expected}"])


def api(version: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a synchronous handler with HighLevel's gatekeeping; the handler runs under the engine lock."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            engine: SandboxEngine = request.app.state.sandbox
            engine.ensure_started()
            limit_headers: dict[str, str] = {}
            try:
                client, location_id = authenticate(engine, request)
                verdict = engine.limiter.hit(client, location_id)
                limit_headers = verdict.headers
                if not verdict.allowed:
                    limit_headers["Retry-After"] = str(max(1, round(verdict.retry_after + 0.5)))
                    raise ApiError(429, "Too many requests, please try again later.")
                check_version(request, version)
                if engine.faults.latency_seconds > 0:
                    await asyncio.sleep(engine.faults.latency_seconds)
                fault = engine.faults.take_error()
                if fault is not None:
                    raise ApiError(fault, "Injected fault" if fault != 429 else "Too many requests")
                body = await json_body(request) if request.method in ("POST", "PUT", "DELETE") else {}
                ctx = Ctx(engine, location_id, client, body)
                with engine.lock:
                    response = handler(request, ctx)
                if request.method != "GET":
                    engine.save()
            except ApiError as error:
                response = error.response()
            response.headers.update(limit_headers)
            return response

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
