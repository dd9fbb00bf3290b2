"""Validate exchanges with the Xero sandbox against Xero's published OpenAPI documents (openapi-core)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).parent / "xero-api"
XERO = "https://api.xero.com"  # paths keep the /api.xro/2.0 prefix, as the spec's server URL has it
ACCOUNTING_PREFIX = "/api.xro/2.0"


@functools.cache
def accounting() -> OpenAPI:
    # Xero's document fails the spec validator on its own defaults ('false' for booleans); the schemas work,
    # so only the check of the document itself is turned off.
    return OpenAPI.from_file_path(str(SPECS / "xero_accounting.yaml"), config=Config(spec_validator_cls=None))


@functools.cache
def identity() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero-identity.yaml"), config=Config(spec_validator_cls=None))


class Request:
    """openapi_core.protocols.Request over a recorded call; `path` is relative to the spec's server."""

    def __init__(self, host_url: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = headers.get("content-type", "")
        self.body: bytes | None = body or None

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.data = body
        self.status_code = status
        self.content_type = headers.get("content-type", "")
        self.headers = Headers(list(headers.items()))


@dataclass(frozen=True)
class Allowance:
    """A narrow, documented exception: one validator at one JSON location of one operation."""

    method: str
    path: str
    side: str
    location: str
    validator: str
    reason: str

    def covers(self, method: str, path: str, side: str, location: str, validator: str) -> bool:
        if (self.method, self.side, self.validator) != (method, side, validator) or not path.startswith(self.path):
            return False
        want, got = self.location.split("/") if self.location else [], location.split("/") if location else []
        return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got, strict=True))


def schema_errors(exc: BaseException) -> Iterator[Any]:
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
    context = getattr(err, "context", None)
    if context:
        for sub in context:
            yield from _leaves(sub)
    else:
        yield err


def problems(spec: OpenAPI, side: str, request: Request, response: Response | None,
             allowances: list[Allowance]) -> list[str]:  # fmt: skip
    """What the spec says is wrong with one side of an exchange, less the documented allowances."""
    try:
        with warnings.catch_warnings():
            # openapi-core cannot check oauth2 schemes and says so; the bearer check is tested on its own
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            _validate(spec, side, request, response)
    except OpenAPIError as exc:
        found = []
        for err in schema_errors(exc):
            location = "/".join(str(p) for p in getattr(err, "absolute_path", []))
            validator = str(getattr(err, "validator", type(err).__name__))
            if not any(a.covers(request.method, request.path, side, location, validator) for a in allowances):
                found.append(f"{side} {request.method.upper()} {request.path}: [{location}] {validator}: "
                             f"{getattr(err, 'message', err)}")  # fmt: skip
        return found
    return []


def _validate(spec: OpenAPI, side: str, request: Request, response: Response | None) -> None:
    if side == "request":
        spec.validate_request(request)
    else:
        assert response is not None
        spec.validate_response(request, response)
