"""The Accounting API client: Intuit's URLs, minorversion, requestid and typed faults on the core's vendor kit
(limiter slot, short retries, one 401 refresh; long waits go back to the pipeline as `RetryLater`)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
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

from . import errors, wire
from .settings import Limits

MINOR_VERSION = "75"
MAX_REQUEST_ID = 50
PAGE_SIZE = 1000
LONG_QUERY = 1500  # longer queries go in a POST body (application/text), as python-quickbooks does
BATCH_MAX = 30  # items per batch request
MAX_BATCH_REQUEST_ID = 36  # a batch's requestid
MAX_BATCH_ID = 10  # an item's bId, when the batch has a requestid


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


class BatchReply:
    """A batch request's answers by bId: each item's entity, rows or typed error (a Fault, as the single
    request would raise it; an item the reply does not mention is a `ServerError`: it may have been created)."""

    def __init__(self, answers: dict[str, msgspec.Raw], intuit_tid: str | None) -> None:
        self.answers, self.intuit_tid = answers, intuit_tid

    def _raw(self, bid: str) -> msgspec.Raw | errors.QuickBooksError:
        raw = self.answers.get(bid)
        if raw is None:
            message = f"QuickBooks' batch reply has no answer for item {bid}"
            return errors.ServerError(message, intuit_tid=self.intuit_tid)
        return raw

    def created(self, bid: str, kind: type[wire.E]) -> wire.E | errors.QuickBooksError:
        raw = self._raw(bid)
        return raw if isinstance(raw, errors.QuickBooksError) else wire.batch_entity(kind, raw, self.intuit_tid)

    def rows(self, bid: str, kind: type[wire.E]) -> list[wire.E]:
        """A query item's rows; raises its typed error."""
        raw = self._raw(bid)
        if isinstance(raw, errors.QuickBooksError):
            raise raw
        return wire.batch_query(kind, raw)


class QuickBooksClient(VendorApi):
    """The Accounting API for one realm, on the core's `VendorClient`: Intuit's URLs and minorversion, its
    faults as typed errors, `requestid` on writes (so any write may be resent: Intuit de-duplicates it)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        realm_id: str,
        tokens: TokenSource,
        limiter: Limiter,
        limits: Limits,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base = f"{api_url.rstrip('/')}/v3/company/{realm_id}"
        self.api_url = api_url
        self.realm_id = realm_id
        self.limits = limits
        policy = policy or RetryPolicy(attempts=min(limits.max_attempts, RetryPolicy.attempts))
        self.vendor = VendorClient(http, tokens, limiter, INTUIT, policy=policy, timeout=limits.timeout)

    def with_limiter(self, limiter: Limiter) -> QuickBooksClient:
        """The same realm, token and retries, its requests admitted by `limiter` instead."""
        return QuickBooksClient(
            self.vendor.http, self.api_url, self.realm_id, self.vendor.tokens, limiter, self.limits,
            policy=self.vendor.policy,
        )  # fmt: skip

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
        """One logical request. Every request may be resent: reads, and writes with their `requestid`."""
        query = {"minorversion": MINOR_VERSION, **(params or {})}
        if request_id is not None:
            query["requestid"] = request_id
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = content_type
        return await self.vendor.send(
            method, f"{self.base}/{path}", params=query, headers=headers, content=content, repeatable=True
        )

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

    # writes

    async def create(self, entity: wire.E, request_id: str) -> wire.E:
        path = wire.entity_name(type(entity)).lower()
        response = await self.send("POST", path, content=wire.encode_body(entity), request_id=request_id)
        return wire.decode_entity(type(entity), response.content)

    async def batch(
        self,
        *,
        queries: Mapping[str, str] | None = None,
        creates: Mapping[str, wire.Entity] | None = None,
        request_id: str | None = None,
    ) -> BatchReply:
        """One batch request of queries and creates (bId → query text or entity; at most `BATCH_MAX` in all),
        answered per bId (`BatchReply`). Its items cannot see each other's results and run in any order. A
        batch that creates needs a `request_id` (at most 36 characters, its bIds then at most 10): a resent
        batch replays its first answer."""
        queries, creates = queries or {}, creates or {}
        if not 0 < len(queries) + len(creates) <= BATCH_MAX:
            raise ValueError(f"a batch holds 1 to {BATCH_MAX} items, not {len(queries) + len(creates)}")
        if creates and request_id is None:
            raise ValueError("a batch that creates needs a requestid")
        if request_id is not None and (
            len(request_id) > MAX_BATCH_REQUEST_ID or any(len(bid) > MAX_BATCH_ID for bid in [*queries, *creates])
        ):
            raise ValueError("a batch requestid has at most 36 characters and its bIds at most 10")
        body = wire.encode_batch(queries, creates)
        response = await self.send("POST", "batch", content=body, request_id=request_id)
        return BatchReply(wire.decode_batch(response.content), response.headers.get("intuit_tid"))

    async def batch_create(
        self, entities: dict[str, wire.E], request_id: str
    ) -> dict[str, wire.E | errors.QuickBooksError]:
        """Creates in one batch request (bId → entity; see `batch`).

        Each item's answer is its created entity or its own typed error (a Fault, as a single create would
        raise it); an item the reply does not mention gets a `ServerError` (it may have been created: the
        caller's markers find it). The batch `requestid` makes a resent batch replay its first answer.
        """
        reply = await self.batch(creates=entities, request_id=request_id)
        return {bid: reply.created(bid, type(entity)) for bid, entity in entities.items()}

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


def classify(response: httpx.Response) -> errors.QuickBooksError | None:
    """Intuit's answer as a typed error (None for success); a retryable one carries Intuit's Retry-After."""
    if response.is_success:
        return None
    failure = wire.error_from_response(
        response.status_code,
        response.content,
        response.headers.get("content-type", ""),
        response.headers.get("intuit_tid"),
    )
    if isinstance(failure, errors.RetryableError):
        failure.retry_after = parse_retry_after(response.headers.get("retry-after"))
    return failure


def unreachable(error: httpx.TransportError, method: str, url: str) -> errors.QuickBooksError:
    # the request may have been performed: a write is repeated only with the same requestid
    return errors.TransportError(f"QuickBooks unreachable: {error!r}")


def held(hold: Held) -> errors.QuickBooksError:
    return errors.ThrottledError(f"QuickBooks throttled this company: {hold}", retry_after=hold.retry_after)


INTUIT = VendorRules(
    name="quickbooks", classify=classify, transport_error=unreachable, held=held, response_id_header="intuit_tid"
)
