"""Xero's error bodies: ValidationException with Elements/ValidationErrors, the identity problems, 404 text."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response


class ValidationFailed(Exception):
    """One document was refused; `element` is the document as sent, `messages` Xero's reasons."""

    def __init__(self, element: dict[str, Any], messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.element = element
        self.messages = messages


class NotFound(Exception):
    pass


def validation_body(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def element_with_errors(failure: ValidationFailed) -> dict[str, Any]:
    return {
        **_plain(failure.element),
        "ValidationErrors": [{"Message": m} for m in failure.messages],
        "HasErrors": True,
    }


def validation_response(failures: list[ValidationFailed]) -> Response:
    return JSONResponse(validation_body([element_with_errors(f) for f in failures]), 400)


def bad_request(message: str) -> Response:
    """A request Xero cannot read at all (malformed JSON, a bad `where`): ErrorNumber 14 PostDataInvalidException."""
    return JSONResponse({"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}, 400)


def problem(status: int, title: str, detail: str) -> Response:
    """The identity layer's problem bodies (401 unauthorised, 403 tenant not connected)."""
    return JSONResponse(
        {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": None, "Extensions": {}},
        status,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None,
    )


def not_found() -> Response:
    return PlainTextResponse("The resource you're looking for cannot be found", 404)
