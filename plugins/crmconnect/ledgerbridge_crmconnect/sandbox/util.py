"""Small helpers shared by the sandbox modules: ids, clocks, money, JSON responses, errors."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import jsonbody

_ALNUM = string.ascii_letters + string.digits
CENT = Decimal("0.01")


def ghl_id() -> str:
    """A 20-character id like HighLevel's contact and location ids."""
    return "".join(secrets.choice(_ALNUM) for _ in range(20))


def object_id() -> str:
    """A 24-hex id like the MongoDB ids HighLevel uses for invoices, orders and transactions."""
    return secrets.token_hex(12)


def trace_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ISO 8601 with milliseconds and Z, the way HighLevel writes timestamps."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(now())


def parse_time(value: str) -> datetime | None:
    """Parse an ISO date or date-time (as query parameters give them); None if unparseable."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_decimal(value: Any, field: str) -> Decimal:
    """Accept numbers and numeric strings (HighLevel examples use both); reject anything else."""
    if isinstance(value, bool) or value is None:
        raise ApiError(422, [f"{field} must be a number"])
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ApiError(422, [f"{field} must be a number"]) from None
    if not result.is_finite():
        raise ApiError(422, [f"{field} must be a number"])
    return result


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Money goes out as a JSON number in major units (150.1, 99.99), integral values without ".0".
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(data: Any) -> bytes:
    return json.dumps(data, default=json_default, separators=(",", ":")).encode()


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class ApiError(Exception):
    """An error answered in HighLevel's shapes: 422 carries a message list, others a string."""

    def __init__(self, status: int, message: str | list[str], **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        if "shape" in self.extra and self.extra["shape"] == "http_exception":
            # The payments service answers {"status":404,"message":…,"name":"HttpException","traceId":…}.
            return {"status": self.status, "message": self.message, "name": "HttpException", "traceId": trace_id()}
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        names = {401: "Unauthorized", 403: "Forbidden", 422: "Unprocessable Entity", 429: "Too Many Requests"}
        if self.status in names:
            body["error"] = names[self.status]
        body.update({k: v for k, v in self.extra.items() if k != "shape"})
        return body

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; a malformed or non-object body is a 400, never a 500."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = jsonbody.loads(raw)
    except ValueError:
        raise ApiError(400, "Unexpected token in JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return data


def require_str(body: dict[str, Any], *names: str) -> None:
    """class-validator style 422 for missing or non-string required fields."""
    problems: list[str] = []
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            problems.append(f"{name} should not be empty")
        if not isinstance(value, str):
            problems.append(f"{name} must be a string")
    if problems:
        raise ApiError(422, problems)


def int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        result = int(value)
    except ValueError:
        raise ApiError(422, [f"{name} must be a number"]) from None
    if result < 0:
        raise ApiError(422, [f"{name} must not be less than 0"])
    return result


def secrets_token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))
