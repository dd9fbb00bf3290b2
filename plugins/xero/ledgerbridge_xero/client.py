"""The Accounting API client: bearer + tenant headers, Idempotency-Key on every write, Xero's answers as typed
errors, on the core's vendor kit (limits, short retries, one refresh on 401; long waits go to the pipeline)."""

from __future__ import annotations

from typing import Any

import httpx
from ledgerbridge.vendor import (
    Held,
    Limiter,
    RetryPolicy,
    TokenSource,
    VendorApi,
    VendorClient,
    VendorRules,
    parse_retry_after,
)

from . import errors
from .limiter import budget
from .settings import Limits

MAX_KEY = 128


def idempotency_key(*parts: str) -> str:
    """Xero accepts keys up to 128 characters; long keys keep their unique tail."""
    key = ":".join(parts)
    return key if len(key) <= MAX_KEY else key[-MAX_KEY:]


class XeroClient(VendorApi):
    """The Accounting API for one tenant, on the core's `VendorClient`: bearer + tenant headers, an
    Idempotency-Key on every write (so writes may be resent), Xero's answers as typed errors."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        tenant_id: str,
        tokens: TokenSource,
        limiter: Limiter,
        limits: Limits,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.api_url = api_url
        self.tenant_id = tenant_id
        self.limits = limits
        policy = policy or RetryPolicy(
            attempts=min(limits.max_attempts, RetryPolicy.attempts),
            wait_initial=limits.backoff_base,
            wait_max=min(limits.backoff_cap, RetryPolicy.wait_max),
            longest_wait=limits.longest_wait,
            time_scale=limits.time_scale,
        )
        self.vendor = VendorClient(http, tokens, limiter, XERO, policy=policy, timeout=limits.timeout)

    async def get(self, path: str, *, params: dict[str, str] | None = None, modified_since: str | None = None) -> bytes:
        headers = {"If-Modified-Since": modified_since} if modified_since else {}
        return await self._call("GET", path, params=params, headers=headers)

    async def put(self, path: str, body: dict[str, Any], *, key: str) -> bytes:
        return await self._call("PUT", path, json=body, headers={"Idempotency-Key": idempotency_key(key)})

    async def post(self, path: str, body: dict[str, Any], *, key: str) -> bytes:
        return await self._call("POST", path, json=body, headers={"Idempotency-Key": idempotency_key(key)})

    async def _call(
        self, method: str, path: str, *, headers: dict[str, str], params: dict[str, str] | None = None, json: Any = None
    ) -> bytes:
        # reads are safe and every write carries an Idempotency-Key: any request may be resent
        response = await self.vendor.send(
            method,
            self.api_url + path,
            params=params,
            json=json,
            headers={"xero-tenant-id": self.tenant_id, "Accept": "application/json", **headers},
            repeatable=True,
        )
        return response.content


def classify(response: httpx.Response) -> errors.XeroError | None:
    """Xero's answer as a typed error, None for success."""
    status = response.status_code
    where = f"{response.request.method} {response.request.url.path}"
    if response.is_success:
        return None
    if status == 401:
        return errors.TokenRefusedError("Xero refused the access token after a refresh", status=401)
    if status == 403:
        return errors.ReauthorizationNeeded("Xero says this organisation is no longer connected", status=403)
    if status == 404:
        return errors.NotFoundError(f"{where}: not found in Xero", status=404)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        problem = response.headers.get("X-Rate-Limit-Problem")
        wait = 1.0 if retry_after is None else retry_after
        return errors.RateLimitedError(
            f"Xero's {problem or 'rate'} limit: retry in {wait:.0f}s", retry_after=wait, problem=problem
        )
    if status == 400:
        return _validation(where, response)
    if status >= 500:
        return errors.UnavailableError(f"Xero answered {status} to {where}", status=status)
    return errors.XeroError(f"Xero answered {status} to {where}: {response.text[:200]}", status=status)


def unreachable(error: httpx.TransportError, method: str, url: str) -> errors.XeroError:
    return errors.UnavailableError(f"Xero is unreachable: {error}")


def _validation(where: str, response: httpx.Response) -> errors.XeroError:
    try:
        body = response.json()
    except ValueError:
        return errors.ValidationError(f"{where}: Xero refused the request: {response.text[:200]}", status=400)
    messages: list[str] = []
    if isinstance(body, dict):
        for element in body.get("Elements") or []:
            for problem in (element or {}).get("ValidationErrors") or []:
                if isinstance(problem, dict) and problem.get("Message"):
                    messages.append(str(problem["Message"]))
        if not messages and body.get("Message"):
            messages.append(str(body["Message"]))
    summary = "; ".join(messages) or "validation failed"
    return errors.ValidationError(f"Xero refused {where}: {summary}", status=400, messages=tuple(messages))


def held(hold: Held) -> errors.XeroError:
    return errors.RateLimitedError(f"Xero's rate limit: {hold}", retry_after=hold.retry_after or 1.0)


XERO = VendorRules(name="xero", classify=classify, transport_error=unreachable, budget=budget, held=held)
