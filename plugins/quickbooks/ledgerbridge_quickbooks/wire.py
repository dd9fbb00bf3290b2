"""Wire structs for the Accounting API, named as QuickBooks spells them; lenient decoding, decoders built once.

Responses ignore unknown members (LineEx noise, new fields). Requests are encoded with unset (None) members
omitted, so every write is naturally sparse. Money is Decimal on the wire, never float.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import msgspec

from . import errors


class Wire(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every QuickBooks struct: unknown members ignored, None members not sent."""


class Ref(Wire):
    value: str
    name: str | None = None


class EmailAddress(Wire):
    Address: str | None = None


class TelephoneNumber(Wire):
    FreeFormNumber: str | None = None


class PhysicalAddress(Wire):
    Line1: str | None = None
    Line2: str | None = None
    City: str | None = None
    CountrySubDivisionCode: str | None = None
    PostalCode: str | None = None
    Country: str | None = None


class MetaData(Wire):
    CreateTime: str | None = None
    LastUpdatedTime: str | None = None


class Entity(Wire):
    Id: str | None = None
    SyncToken: str | None = None
    sparse: bool | None = None
    MetaData: MetaData | None = None
    status: str | None = None  # "Deleted" in CDC and delete replies


class Customer(Entity):
    DisplayName: str | None = None
    GivenName: str | None = None
    FamilyName: str | None = None
    CompanyName: str | None = None
    PrimaryEmailAddr: EmailAddress | None = None
    PrimaryPhone: TelephoneNumber | None = None
    BillAddr: PhysicalAddress | None = None
    Active: bool | None = None
    Balance: Decimal | None = None
    CurrencyRef: Ref | None = None

    @property
    def email(self) -> str | None:
        return self.PrimaryEmailAddr.Address if self.PrimaryEmailAddr else None


class Item(Entity):
    Name: str | None = None
    Sku: str | None = None
    Type: str | None = None
    Active: bool | None = None
    Taxable: bool | None = None
    IncomeAccountRef: Ref | None = None


class Account(Entity):
    Name: str | None = None
    AccountType: str | None = None
    AccountSubType: str | None = None
    Active: bool | None = None


class PaymentMethod(Entity):
    Name: str | None = None
    Type: str | None = None
    Active: bool | None = None


class TaxRateDetail(Wire):
    TaxRateRef: Ref | None = None


class TaxRateList(Wire):
    TaxRateDetail: list[TaxRateDetail] = []


class TaxCode(Entity):
    Name: str | None = None
    Active: bool | None = None
    Taxable: bool | None = None
    SalesTaxRateList: TaxRateList | None = None


class TaxRate(Entity):
    Name: str | None = None
    RateValue: Decimal | None = None
    Active: bool | None = None


class CompanyInfo(Entity):
    CompanyName: str | None = None
    Country: str | None = None


class SalesItemLineDetail(Wire):
    ItemRef: Ref | None = None
    Qty: Decimal | None = None
    UnitPrice: Decimal | None = None
    TaxCodeRef: Ref | None = None
    ServiceDate: date | None = None


class DiscountLineDetail(Wire):
    PercentBased: bool | None = None
    DiscountPercent: Decimal | None = None
    DiscountAccountRef: Ref | None = None


class LinkedTxn(Wire):
    TxnId: str
    TxnType: str


class Line(Wire, kw_only=True):
    Id: str | None = None
    DetailType: str | None = None  # Intuit omits it on payment lines
    Amount: Decimal | None = None
    Description: str | None = None
    SalesItemLineDetail: SalesItemLineDetail | None = None
    DiscountLineDetail: DiscountLineDetail | None = None
    LinkedTxn: list[LinkedTxn] | None = None


class TxnTaxDetail(Wire):
    TxnTaxCodeRef: Ref | None = None
    TotalTax: Decimal | None = None


class Transaction(Entity):
    DocNumber: str | None = None
    TxnDate: date | None = None
    CustomerRef: Ref | None = None
    Line: list[Line] | None = None
    TxnTaxDetail: TxnTaxDetail | None = None
    TotalAmt: Decimal | None = None
    PrivateNote: str | None = None
    CurrencyRef: Ref | None = None
    ApplyTaxAfterDiscount: bool | None = None


class Invoice(Transaction):
    DueDate: date | None = None
    Balance: Decimal | None = None
    BillEmail: EmailAddress | None = None
    EmailStatus: str | None = None
    LinkedTxn: list[LinkedTxn] | None = None

    @property
    def voided(self) -> bool:
        return (self.PrivateNote or "").startswith("Voided")


class SalesReceipt(Transaction):
    PaymentMethodRef: Ref | None = None
    PaymentRefNum: str | None = None
    DepositToAccountRef: Ref | None = None
    BillEmail: EmailAddress | None = None


class RefundReceipt(SalesReceipt):
    pass


class Payment(Entity):
    TxnDate: date | None = None
    CustomerRef: Ref | None = None
    TotalAmt: Decimal | None = None
    UnappliedAmt: Decimal | None = None
    Line: list[Line] | None = None
    PaymentMethodRef: Ref | None = None
    PaymentRefNum: str | None = None
    DepositToAccountRef: Ref | None = None
    PrivateNote: str | None = None

    def invoice_ids(self) -> list[str]:
        return [link.TxnId for line in self.Line or [] for link in line.LinkedTxn or [] if link.TxnType == "Invoice"]


class DeletedEntity(Wire):
    Id: str
    status: str | None = None


E = TypeVar("E", bound=Entity)

# envelopes


class QueryEnvelope(Wire):
    QueryResponse: dict[str, msgspec.Raw] = {}


class CDCQueryEnvelope(Wire):
    QueryResponse: list[dict[str, msgspec.Raw]] = []


class CDCEnvelope(Wire):
    CDCResponse: list[CDCQueryEnvelope] = []
    time: str | None = None


class BatchItem(Wire):
    bId: str
    Fault: FaultBody | None = None
    QueryResponse: dict[str, msgspec.Raw] | None = None


class BatchEnvelope(Wire):
    BatchItemResponse: list[msgspec.Raw] = []


class ErrorEntry(Wire):
    Message: str | None = None
    Detail: str | None = None
    code: str | None = None
    element: str | None = None


class FaultBody(Wire):
    Error: list[ErrorEntry] = []
    type: str | None = None


class LowerErrorEntry(Wire):
    message: str | None = None
    detail: str | None = None
    code: str | None = None


class LowerFaultBody(Wire):
    error: list[LowerErrorEntry] = []
    type: str | None = None


class FaultEnvelope(Wire):
    Fault: FaultBody | None = None
    fault: LowerFaultBody | None = None


ENTITY_TYPES: dict[str, type[Entity]] = {
    cls.__name__: cls
    for cls in (
        Customer, Item, Account, PaymentMethod, TaxCode, TaxRate, CompanyInfo, Invoice, SalesReceipt,
        RefundReceipt, Payment,
    )
}  # fmt: skip

encoder = msgspec.json.Encoder(decimal_format="number")
_entity_envelope = msgspec.json.Decoder(dict[str, msgspec.Raw])
_query_envelope = msgspec.json.Decoder(QueryEnvelope)
_cdc_envelope = msgspec.json.Decoder(CDCEnvelope)
_batch_envelope = msgspec.json.Decoder(BatchEnvelope)
_batch_item = msgspec.json.Decoder(BatchItem)
_fault_envelope = msgspec.json.Decoder(FaultEnvelope)
_count = msgspec.json.Decoder(dict[str, Any])


@cache
def _one(kind: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind)


@cache
def _many(kind: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(list[kind])  # type: ignore[valid-type]


def entity_name(kind: type[Entity]) -> str:
    return kind.__name__


def encode(entity: Entity) -> bytes:
    return encoder.encode({entity_name(type(entity)): entity})


def encode_body(entity: Entity) -> bytes:
    """The bare entity, as the entity POST takes it."""
    return encoder.encode(entity)


def decode_entity(kind: type[E], body: bytes) -> E:
    """`{"Customer": {...}, "time": ...}` → Customer."""
    raw = _entity_envelope.decode(body).get(entity_name(kind))
    if raw is None:
        raise errors.QuickBooksError(f"the response has no {entity_name(kind)}")
    result: E = _one(kind).decode(raw)
    return result


def decode_query(kind: type[E], body: bytes) -> list[E]:
    raw = _query_envelope.decode(body).QueryResponse.get(entity_name(kind))
    return [] if raw is None else list(_many(kind).decode(raw))


def decode_count(body: bytes) -> tuple[int, str | None]:
    """COUNT(*) → (count, the response's server time)."""
    decoded = _count.decode(body)
    response = decoded.get("QueryResponse") or {}
    return int(response.get("totalCount", 0)), decoded.get("time") or None


def decode_cdc(kind: type[E], body: bytes) -> tuple[list[E], str | None]:
    """Changed (and deleted, `status == "Deleted"`) objects of one entity, and the response time."""
    envelope = _cdc_envelope.decode(body)
    found: list[E] = []
    for block in envelope.CDCResponse:
        for response in block.QueryResponse:
            raw = response.get(entity_name(kind))
            if raw is not None:
                found.extend(_many(kind).decode(raw))
    return found, envelope.time


def decode_batch(body: bytes) -> dict[str, msgspec.Raw]:
    """bId → the raw item (decode it with `batch_query`/`batch_entity`)."""
    out: dict[str, msgspec.Raw] = {}
    for raw in _batch_envelope.decode(body).BatchItemResponse:
        out[_batch_item.decode(raw).bId] = raw
    return out


def encode_batch(queries: Mapping[str, str], creates: Mapping[str, Entity]) -> bytes:
    """`{"BatchItemRequest": [{"bId": …, "Query": "…"}, {"bId": …, "operation": "create", "<Entity>": {…}}, …]}`."""
    items: list[dict[str, Any]] = [{"bId": bid, "Query": text} for bid, text in queries.items()]
    items += [{"bId": bid, "operation": "create", entity_name(type(entity)): entity} for bid, entity in creates.items()]
    return encoder.encode({"BatchItemRequest": items})


def batch_entity(kind: type[E], raw: msgspec.Raw, intuit_tid: str | None = None) -> E | errors.QuickBooksError:
    """One batch item's answer: the entity, or its Fault as the typed error a single request would raise."""
    item = _batch_item.decode(raw)
    if item.Fault is not None:
        return fault_error(400, item.Fault, intuit_tid)
    found = _entity_envelope.decode(raw).get(entity_name(kind))
    if found is None:
        return errors.ServerError(f"QuickBooks' batch item {item.bId} has neither a {entity_name(kind)} nor a Fault",
                                  intuit_tid=intuit_tid)  # fmt: skip
    result: E = _one(kind).decode(found)
    return result


def batch_query(kind: type[E], raw: msgspec.Raw) -> list[E]:
    item = _batch_item.decode(raw)
    if item.Fault is not None:
        raise fault_error(400, item.Fault, None)
    found = (item.QueryResponse or {}).get(entity_name(kind))
    return [] if found is None else list(_many(kind).decode(found))


# faults


def fault_error(status: int, fault: FaultBody, intuit_tid: str | None) -> errors.QuickBooksError:
    first = fault.Error[0] if fault.Error else ErrorEntry()
    code = first.code or ""
    message = f"QuickBooks {code} {first.Message or fault.type or 'error'}: {first.Detail or ''}".strip()
    kind = errors.FAULT_CLASSES.get(code, errors.FaultError)
    return _typed(status, kind, message, code=code, detail=first.Detail, element=first.element, tid=intuit_tid)


def error_from_response(status: int, body: bytes, content_type: str, intuit_tid: str | None) -> errors.QuickBooksError:
    """A typed error for any non-2xx answer: JSON Fault, lower-case fault (401/403), XML (429) or nothing."""
    code: str | None = None
    message = f"HTTP {status}"
    detail: str | None = None
    if "xml" in content_type or body.lstrip().startswith(b"<"):
        code, message, detail = _xml_fault(body, message)
    else:
        try:
            envelope = _fault_envelope.decode(body)
        except msgspec.DecodeError:
            envelope = FaultEnvelope()
        if envelope.Fault is not None and status not in (401, 403, 429) and status < 500:
            return fault_error(status, envelope.Fault, intuit_tid)
        if envelope.Fault is not None and envelope.Fault.Error:
            first = envelope.Fault.Error[0]
            code, message, detail = first.code, first.Message or message, first.Detail
        elif envelope.fault is not None and envelope.fault.error:
            lower = envelope.fault.error[0]
            code, message, detail = lower.code, lower.message or message, lower.detail
    text = f"QuickBooks HTTP {status} {code or ''} {message}".replace("  ", " ").strip()
    if status == 401:
        return _typed(status, errors.AuthenticationError, text, code=code, detail=detail, tid=intuit_tid)
    if status == 403:
        return _typed(status, errors.AuthorizationError, text, code=code, detail=detail, tid=intuit_tid)
    if status == 429:
        return _typed(status, errors.ThrottledError, text, code=code, detail=detail, tid=intuit_tid)
    if status >= 500:
        return _typed(status, errors.ServerError, text, code=code, detail=detail, tid=intuit_tid)
    return _typed(status, errors.FaultError, text, code=code, detail=detail, tid=intuit_tid)


def _typed(
    status: int,
    kind: type[errors.QuickBooksError],
    message: str,
    *,
    code: str | None,
    detail: str | None,
    tid: str | None,
    element: str | None = None,
) -> errors.QuickBooksError:
    return kind(message, status=status, code=code, detail=detail, element=element, intuit_tid=tid)


def _xml_fault(body: bytes, fallback: str) -> tuple[str | None, str, str | None]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None, fallback, None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Error":
            parts = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in element}
            return element.get("code"), parts.get("Message", fallback), parts.get("Detail")
    return None, fallback, None
