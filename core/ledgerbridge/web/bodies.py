"""Reading request bodies safely: a size cap, JSON that is well-formed and not absurdly nested."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from ledgerbridge.web.errors import ApiError

T = TypeVar("T")

DEFAULT_MAX_BYTES = 1_048_576
DEFAULT_MAX_DEPTH = 64


async def read_body(request: Request, max_bytes: int | None = None) -> bytes:
    """The raw body, or a 413 once it grows past `max_bytes` (default: the server's limit)."""
    limit = max_bytes if max_bytes is not None else _server_limit(request)
    if declared_length(request.headers.get("content-length")) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def declared_length(value: str | bytes | None) -> int:
    """A Content-Length as a number: 0 when absent or not ASCII digits, huge when absurdly long."""
    if value is None:
        return 0
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not (text.isascii() and text.isdigit()):
        return 0  # the server refuses such a header itself; here it only must not crash
    return int(text) if len(text) <= 18 else 10**18


def whole_number(raw: str, maximum: int) -> int | None:
    """`raw` as an integer from 0 to `maximum` when it is plain ASCII digits (not `²`, not 5,000 of them)."""
    if not raw or len(raw) > len(str(maximum)) or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= maximum else None


def parse_json(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode JSON, or a 400 saying what is wrong with it."""
    if not raw.strip():
        raise ApiError(400, "the request body is empty; JSON was expected")
    try:
        value = msgspec.json.decode(raw)
        # The walks below cost more than the decoding; a body with fewer brackets than the limit cannot be too
        # deep, and one without a \uD… escape cannot hold half a surrogate pair (raw UTF-8 cannot encode one).
        if raw.count(b"[") + raw.count(b"{") > max_depth and _depth_exceeds(value, max_depth):
            raise ApiError(400, f"the JSON body is nested deeper than {max_depth} levels")
        if b"\\ud" in raw or b"\\uD" in raw:
            _refuse_lone_surrogates(value)
    except RecursionError as exc:
        raise ApiError(400, f"the JSON body is nested deeper than {max_depth} levels") from exc
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
    return value


def decode_json(raw: bytes, type: type[T], max_depth: int = DEFAULT_MAX_DEPTH) -> T:
    """Decode JSON strictly into `type` (unknown fields refused where the type forbids them), or a 400/422."""
    value = parse_json(raw, max_depth)
    try:
        return msgspec.convert(value, type, strict=True)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"the request body does not fit: {exc}") from exc


async def read_json(request: Request, type: type[T]) -> T:
    return decode_json(await read_body(request), type, _server_depth(request))


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _refuse_lone_surrogates(value: Any) -> None:
    """JSON may escape half a UTF-16 pair (`"\\ud800"`); that is not text, and nothing could store it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "the JSON body contains a lone UTF-16 surrogate, which is not text") from None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _server_limit(request: Request) -> int:
    return int(getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BYTES))


def _server_depth(request: Request) -> int:
    return int(getattr(request.app.state, "max_json_depth", DEFAULT_MAX_DEPTH))
