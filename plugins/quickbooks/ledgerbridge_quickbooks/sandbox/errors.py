"""Intuit's error envelopes: capitalised ValidationFault (400), lower-case 401/403, XML throttle (429)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class QBOError(Exception):
    """One entry of a ValidationFault; raised by the engine, rendered by the API layer."""

    code: str
    message: str
    detail: str
    element: str = ""
    status: int = 400
    fault_type: str = "ValidationFault"

    def fault(self) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.fault_type}


def not_found(entity: str, entity_id: str) -> QBOError:
    return QBOError(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {entity_id})",
    )


def required(element: str) -> QBOError:
    return QBOError(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def invalid_reference(element: str, value: object) -> QBOError:
    return QBOError(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {element} {value} does not exist or has been made inactive",
        element,
    )


def stale(entity: str, entity_id: str) -> QBOError:
    return QBOError(
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and root were working on this at the same time. root finished before "
        f"you did, so your work was not saved. ({entity} {entity_id})",
    )


def validation(detail: str, element: str = "") -> QBOError:
    return QBOError("6000", "A business validation error has occurred while processing your request", detail, element)


def duplicate_name(element: str = "") -> QBOError:
    return QBOError("6240", "Duplicate Name Exists Error", "The name supplied already exists. : null", element)


def duplicate_doc_number(doc: str) -> QBOError:
    return QBOError("6140", "Duplicate Document Number Error", f"Duplicate Document Number Error : {doc}", "DocNumber")


def unsupported(operation: str, entity: str) -> QBOError:
    return QBOError(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: Operation {operation} is not supported for {entity}",
    )


def parse_error(detail: str) -> QBOError:
    return QBOError("4000", "Error parsing query", f"QueryParserError: {detail}")


def invalid_query(detail: str) -> QBOError:
    return QBOError("4001", "Invalid query", f"QueryValidationError: {detail}")


def validation_body(error: QBOError, time: str) -> dict[str, Any]:
    return {"Fault": error.fault(), "time": time}


def auth_body(status: int, detail: str, epoch_ms: int) -> dict[str, Any]:
    """401 AuthenticationFailed / 403 AuthorizationFailed, in Intuit's lower-case envelope."""
    if status == 401:
        name, code, kind = "AuthenticationFailed", "3200", "AUTHENTICATION"
    else:
        name, code, kind = "AuthorizationFailed", "3100", "AUTHORIZATION"
    message = f"message={name}; errorCode=00{code}; statusCode={status}"
    return {"fault": {"error": [{"message": message, "detail": detail, "code": code}], "type": kind}, "time": epoch_ms}


def throttle_xml(time: str) -> str:
    """Intuit answers throttling in XML whatever the Accept header says."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
        '<Fault type="SERVICE"><Error code="3001">'
        "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
        "<Detail>The request limit was reached.</Detail>"
        "</Error></Fault></IntuitResponse>"
    )


def system_fault_body(status: int, time: str) -> dict[str, Any]:
    """5xx bodies are [U]: the sandbox sends a SystemFault with code 10000."""
    return {
        "Fault": {
            "Error": [
                {
                    "Message": "An application error has occurred while processing your request",
                    "Detail": f"System Failure Error: injected HTTP {status}",
                    "code": "10000",
                }
            ],
            "type": "SystemFault",
        },
        "time": time,
    }
