"""An async Accounting API client (httpx): limiter, retries with full jitter, requestid, typed faults, 401 refresh."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import msgspec

from . import errors, wire
from .limiter import RealmLimiter
from .settings import Limits

MINOR_VERSION = "75"
MAX_REQUEST_ID = 50
PAGE_SIZE = 1000
LONG_QUERY = 1500  # longer queries go in a POST body (application/text), as python-quickbooks does
BATCH_MAX = 30


class TokenSource(Protocol):
    async def access_token(self) -> str: ...

    async def refresh(self, rejected: str) -> str: ...


def request_id(key: str, step: str) -> str:
    """`<idempotency key>-<step>`, at most 50 characters (a hash keeps long steps unique)."""
    value = f"{key}-{step}"
    if len(value) <= MAX_REQUEST_ID:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[: MAX_REQUEST_ID - 17]}-{digest}"


def quote_value(value: str) -> str:
    """A string literal for the query language (backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class QuickBooksClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        realm_id: str,
        tokens: TokenSource,
        limiter: RealmLimiter,
        limits: Limits,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.http = http
        self.base = f"{api_url.rstrip('/')}/v3/company/{realm_id}"
        self.realm_id = realm_id
        self.tokens = tokens
        self.limiter = limiter
        self.limits = limits
        self.calls = 0  # API requests sent, retries included (the benchmark reads it)
        self._sleep = sleep
        self._jitter = jitter

    # transport

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.limits.backoff_cap, self.limits.backoff_base * 2 ** (attempt - 1))
        delay = self._jitter() * ceiling
        return float(max(delay, retry_after) if retry_after is not None else delay)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        request_id: str | None = None,
    ) -> httpx.Response:
        """One logical request: retried on 429, 5xx and transport errors (same requestid), refreshed once on 401."""
        query = {"minorversion": MINOR_VERSION, **(params or {})}
        if request_id is not None:
            query["requestid"] = request_id
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = await self.tokens.access_token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = content_type
            try:
                async with self.limiter.slot():
                    self.calls += 1
                    response = await self.http.request(
                        method,
                        f"{self.base}/{path}",
                        params=query,
                        content=content,
                        headers=headers,
                        timeout=self.limits.timeout,
                    )
            except httpx.TransportError as exc:
                # the request may have been performed: a write is repeated only with the same requestid
                failure: errors.QuickBooksError = errors.TransportError(f"QuickBooks unreachable: {exc!r}")
                if attempt >= self.limits.max_attempts:
                    raise failure from exc
                await self._sleep(self._backoff(attempt, None))
                continue
            if response.is_success:
                return response
            failure = wire.error_from_response(
                response.status_code,
                response.content,
                response.headers.get("content-type", ""),
                response.headers.get("intuit_tid"),
            )
            if isinstance(failure, errors.AuthenticationError) and not refreshed:
                refreshed = True
                await self.tokens.refresh(token)
                attempt -= 1  # a refresh is not a failed attempt
                continue
            if isinstance(failure, errors.RetryableError) and attempt < self.limits.max_attempts:
                retry_after = _retry_after(response.headers.get("retry-after"))
                await self._sleep(self._backoff(attempt, retry_after))
                continue
            if isinstance(failure, errors.RetryableError):
                failure.retry_after = _retry_after(response.headers.get("retry-after"))
            raise failure

    # reads

    async def read(self, kind: type[wire.E], entity_id: str) -> wire.E:
        response = await self.send("GET", f"{wire.entity_name(kind).lower()}/{quote(entity_id)}")
        return wire.decode_entity(kind, response.content)

    async def _query_raw(self, text: str) -> bytes:
        if len(text) > LONG_QUERY:
            response = await self.send("POST", "query", content=text.encode(), content_type="application/text")
        else:
            response = await self.send("GET", "query", params={"query": text})
        return response.content

    async def query(self, kind: type[wire.E], text: str) -> list[wire.E]:
        return wire.decode_query(kind, await self._query_raw(text))

    async def count(self, text: str) -> tuple[int, str | None]:
        return wire.decode_count(await self._query_raw(text))

    async def pages(self, kind: type[wire.E], text: str, *, start: int = 1) -> AsyncIterator[tuple[int, list[wire.E]]]:
        """Pages of `PAGE_SIZE` as (start position of the page, rows); `text` must have no paging clauses."""
        position = start
        while True:
            rows = await self.query(kind, f"{text} STARTPOSITION {position} MAXRESULTS {PAGE_SIZE}")
            yield position, rows
            if len(rows) < PAGE_SIZE:
                return
            position += len(rows)

    async def cdc(self, kind: type[wire.E], changed_since: str) -> tuple[list[wire.E], str | None]:
        response = await self.send(
            "GET", "cdc", params={"entities": wire.entity_name(kind), "changedSince": changed_since}
        )
        return wire.decode_cdc(kind, response.content)

    async def batch_queries(self, queries: dict[str, str]) -> dict[str, msgspec.Raw]:
        """Several queries in one request (bId → raw item); read-only, so no requestid is needed."""
        items = [{"bId": bid, "Query": text} for bid, text in queries.items()]
        response = await self.send("POST", "batch", content=msgspec.json.encode({"BatchItemRequest": items}))
        return wire.decode_batch(response.content)

    # writes

    async def create(self, entity: wire.E, request_id: str) -> wire.E:
        path = wire.entity_name(type(entity)).lower()
        response = await self.send("POST", path, content=wire.encode_body(entity), request_id=request_id)
        return wire.decode_entity(type(entity), response.content)

    async def update(self, entity: wire.E, request_id: str) -> wire.E:
        """A sparse update: only the members set on `entity` change (Id and SyncToken required)."""
        entity = msgspec.structs.replace(entity, sparse=True)
        return await self.create(entity, request_id)

    async def void(self, kind: type[wire.E], entity_id: str, sync_token: str, request_id: str) -> wire.E:
        name = wire.entity_name(kind)
        params = {"operation": "void"} if name == "Invoice" else {"operation": "update", "include": "void"}
        body: dict[str, Any] = {"Id": entity_id, "SyncToken": sync_token}
        if name != "Invoice":
            body["sparse"] = True
        response = await self.send(
            "POST", name.lower(), params=params, content=msgspec.json.encode(body), request_id=request_id
        )
        return wire.decode_entity(kind, response.content)

    async def delete(self, kind: type[wire.Entity], entity_id: str, sync_token: str, request_id: str) -> None:
        body = msgspec.json.encode({"Id": entity_id, "SyncToken": sync_token})
        await self.send(
            "POST", wire.entity_name(kind).lower(), params={"operation": "delete"}, content=body, request_id=request_id
        )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
