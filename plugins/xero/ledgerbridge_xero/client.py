"""The Accounting API client: bearer + tenant headers, Idempotency-Key on every write, Xero's limits
(aiolimiter + a concurrency cap, Retry-After on 429), one refresh on 401, backoff on 5xx and transport errors."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from . import errors
from .limiter import TenantLimiter
from .settings import Limits
from .tokens import AccountTokens

MAX_KEY = 128


def idempotency_key(*parts: str) -> str:
    """Xero accepts keys up to 128 characters; long keys keep their unique tail."""
    key = ":".join(parts)
    return key if len(key) <= MAX_KEY else key[-MAX_KEY:]


class XeroClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        tenant_id: str,
        tokens: AccountTokens,
        limiter: TenantLimiter,
        limits: Limits,
    ) -> None:
        self.http = http
        self.api_url = api_url
        self.tenant_id = tenant_id
        self.tokens = tokens
        self.limiter = limiter
        self.limits = limits
        self.calls = 0

    async def get(self, path: str, *, params: dict[str, str] | None = None, modified_since: str | None = None) -> bytes:
        headers = {"If-Modified-Since": modified_since} if modified_since else {}
        return await self._call("GET", path, params=params, headers=headers)

    async def put(self, path: str, body: dict[str, Any], *, key: str) -> bytes:
        return await self._call("PUT", path, json=body, headers={"Idempotency-Key": idempotency_key(key)})

    async def post(self, path: str, body: dict[str, Any], *, key: str) -> bytes:
        return await self._call("POST", path, json=body, headers={"Idempotency-Key": idempotency_key(key)})

    async def _call(self, method: str, path: str, **kwargs: Any) -> bytes:
        refreshed = False
        headers = kwargs.pop("headers", {})
        for attempt in range(1, self.limits.max_attempts + 1):
            token = await self.tokens.access_token()
            all_headers = {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": self.tenant_id,
                "Accept": "application/json",
                **headers,
            }
            try:
                async with self.limiter.slot():
                    self.calls += 1
                    response = await self.http.request(method, self.api_url + path, headers=all_headers, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == self.limits.max_attempts:
                    raise errors.UnavailableError(f"Xero is unreachable: {exc}") from exc
                await self._backoff(attempt)
                continue
            self.limiter.observe(response.headers)
            status = response.status_code
            if status == 200:
                return response.content
            if status == 401 and not refreshed:
                refreshed = True
                await self.tokens.refresh(token)
                continue
            if status == 401:
                raise errors.ReauthorizationNeeded("Xero refused the access token after a refresh", status=401)
            if status == 403:
                raise errors.ReauthorizationNeeded("Xero says this organisation is no longer connected", status=403)
            if status == 404:
                raise errors.NotFoundError(f"{method} {path}: not found in Xero", status=404)
            if status == 429:
                retry_after = _seconds(response.headers.get("Retry-After"))
                problem = response.headers.get("X-Rate-Limit-Problem")
                self.limiter.waits.append(retry_after)
                if retry_after > self.limits.longest_wait or attempt == self.limits.max_attempts:
                    raise errors.RateLimitedError(
                        f"Xero's {problem or 'rate'} limit: retry in {retry_after:.0f}s",
                        retry_after=retry_after,
                        problem=problem,
                    )
                await asyncio.sleep(retry_after / self.limits.time_scale)
                continue
            if status == 400:
                raise _validation(method, path, response)
            if status >= 500 and attempt < self.limits.max_attempts:
                await self._backoff(attempt)
                continue
            if status >= 500:
                raise errors.UnavailableError(f"Xero answered {status} to {method} {path}", status=status)
            raise errors.XeroError(f"Xero answered {status} to {method} {path}: {response.text[:200]}", status=status)
        raise errors.UnavailableError(f"{method} {path}: gave up after {self.limits.max_attempts} attempts")

    async def _backoff(self, attempt: int) -> None:
        cap = min(self.limits.backoff_cap, self.limits.backoff_base * 2**attempt)
        await asyncio.sleep(random.uniform(0, cap))


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


def _validation(method: str, path: str, response: httpx.Response) -> errors.XeroError:
    try:
        body = response.json()
    except ValueError:
        return errors.ValidationError(f"{method} {path}: Xero refused the request: {response.text[:200]}", status=400)
    messages: list[str] = []
    if isinstance(body, dict):
        for element in body.get("Elements") or []:
            for problem in (element or {}).get("ValidationErrors") or []:
                if isinstance(problem, dict) and problem.get("Message"):
                    messages.append(str(problem["Message"]))
        if not messages and body.get("Message"):
            messages.append(str(body["Message"]))
    summary = "; ".join(messages) or "validation failed"
    return errors.ValidationError(f"Xero refused {method} {path}: {summary}", status=400, messages=tuple(messages))
