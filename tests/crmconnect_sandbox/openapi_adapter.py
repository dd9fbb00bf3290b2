"""httpx -> openapi-core adapters: validate a sandbox exchange as if it went to services.leadconnectorhq.com."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_SERVER = "https://services.leadconnectorhq.com"


class HttpxOpenAPIRequest:
    """openapi_core.protocols.Request over an httpx.Request; `prefix` is stripped (the sandbox's mount point)."""

    def __init__(self, request: httpx.Request, prefix: str = "") -> None:
        self.request = request
        self.host_url = SPEC_SERVER
        path = request.url.path
        self.path = path[len(prefix) :] if prefix and path.startswith(prefix) else path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = request.headers.get("content-type", "")
        self.body: bytes | None = request.content or None

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


class HttpxOpenAPIResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))


@dataclass(frozen=True)
class Allowance:
    """A narrow, documented exception: one validator at one JSON location of one operation."""

    method: str
    path: str  # the spec's path template
    side: str  # "request" or "response"
    location: str  # JSON path with * for any index/key, e.g. "invoiceItems/*"
    validator: str  # jsonschema keyword: type, required, enum…
    reason: str

    def covers(self, method: str, path: str, side: str, location: str, validator: str) -> bool:
        if (self.method, self.path, self.side, self.validator) != (method, path, side, validator):
            return False
        want, got = self.location.split("/") if self.location else [], location.split("/") if location else []
        return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got, strict=True))


def schema_errors(exc: BaseException) -> Iterator[Any]:
    """jsonschema errors found anywhere in an openapi-core exception chain (non-schema errors yield the exc)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for err in getattr(current, "schema_errors", ()) or ():
            found = True
            yield from _leaves(err)
        current = current.__cause__ or current.__context__
    if not found:
        yield exc


def _leaves(err: Any) -> Iterator[Any]:
    """anyOf/allOf wrap the real failures in `context`; report those."""
    context = getattr(err, "context", None)
    if context:
        for sub in context:
            yield from _leaves(sub)
    else:
        yield err
