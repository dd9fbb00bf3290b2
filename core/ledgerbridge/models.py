"""Domain models: what plugins exchange through the core, never a vendor's payload.

All models are frozen msgspec Structs with keyword-only fields. Money is a Decimal amount with an ISO 4217
currency code, never a float. Events subclass `Event` and are tagged by their `type` field; each knows the
`object_key` that orders its deliveries (events about one object are delivered in order) and, where it is
about a business document, when that document was created (`object_created_at`, which the core compares with
the account's sync start). `ledgerbridge.events` registers each event type with its hook and its route.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import msgspec

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every domain model."""


class Money(Model, frozen=True):
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise ValueError(f"currency must be an ISO 4217 code such as 'USD', got {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal("0"), currency=currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"


class Address(Model, frozen=True):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Contact(Model, frozen=True):
    """A person or company as both systems know it; `email` is the key that matches them."""

    name: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    company_name: str | None = None
    phone: str | None = None
    address: Address | None = None
    crm_id: str | None = None
    accounting_id: str | None = None

    @property
    def normalized_email(self) -> str | None:
        return self.email.strip().lower() if self.email else None


class TaxRate(Model, frozen=True):
    name: str
    rate_percent: Decimal


class LineItem(Model, frozen=True):
    name: str
    quantity: Decimal
    unit_price: Money
    description: str | None = None
    sku: str | None = None
    taxes: tuple[TaxRate, ...] = ()

    @property
    def amount(self) -> Money:
        return Money(amount=self.quantity * self.unit_price.amount, currency=self.unit_price.currency)


class Discount(Model, frozen=True):
    kind: Literal["percentage", "fixed"]
    value: Decimal


#: Where a payment was taken. A free string: these are the well-known values, and a CRM plugin may add its own.
PaymentSourceKind: TypeAlias = str
PAYMENT_SOURCES: tuple[str, ...] = ("order_form", "subscription", "membership", "calendar", "other")


class Refund(Model, frozen=True):
    """One refund: `amount` is the money returned in this refund alone, never a running total."""

    refund_id: str
    amount: Money
    refunded_at: datetime


class Event(Model, frozen=True, tag_field="type"):
    """Base of every event that travels through the pipeline; subclasses set `tag`."""

    @property
    def object_key(self) -> str:
        """Events with the same key (for one account and plugin) are delivered one at a time, in order."""
        raise NotImplementedError

    @property
    def object_created_at(self) -> datetime | None:
        """When the business document this event is about came to be; None when that does not apply."""
        return None


class Payment(Event, tag="payment", frozen=True):
    """Money taken in the CRM (an order form, a subscription charge, a membership checkout, a booking...)."""

    payment_id: str
    source_kind: PaymentSourceKind
    payer: Contact
    lines: tuple[LineItem, ...]
    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    paid_at: datetime
    order_id: str | None = None
    subscription_id: str | None = None
    payment_method: str | None = None
    reference: str | None = None
    #: every refund of this payment so far, oldest first (their sum is the money refunded in all)
    refunds: tuple[Refund, ...] = ()
    #: the CRM invoice this payment settled: its sale reached the books as that invoice, so only the
    #: refunds are new money (a consumer books them against the invoice, never a second sale)
    invoice_id: str | None = None

    @property
    def object_key(self) -> str:
        return f"payment:{self.payment_id}"

    @property
    def object_created_at(self) -> datetime:
        return self.paid_at


#: The statuses any CRM's invoices go through (a CRM plugin maps its own onto these).
InvoiceStatus: TypeAlias = Literal["draft", "sent", "partially_paid", "paid", "void", "deleted"]


class Invoice(Model, frozen=True):
    invoice_id: str
    number: str
    status: InvoiceStatus
    customer: Contact
    lines: tuple[LineItem, ...]
    subtotal: Money
    discount_total: Money
    tax_total: Money
    total: Money
    amount_paid: Money
    amount_due: Money
    created_at: datetime
    discount: Discount | None = None
    issue_date: date | None = None
    due_date: date | None = None
    updated_at: datetime | None = None


InvoiceChangeKind: TypeAlias = Literal["sent", "updated", "paid", "partially_paid", "voided", "deleted"]


class InvoiceChange(Event, tag="invoice_change", frozen=True):
    """A CRM invoice changed; `invoice` is its full state after the change."""

    kind: InvoiceChangeKind
    invoice: Invoice
    occurred_at: datetime

    @property
    def object_key(self) -> str:
        return f"invoice:{self.invoice.invoice_id}"

    @property
    def object_created_at(self) -> datetime:
        return self.invoice.created_at


ContactChangeKind: TypeAlias = Literal["imported", "created", "updated", "merged", "deleted"]


class ContactSync(Event, tag="contact_sync", frozen=True):
    """A customer appeared or changed in the accounting system and should exist in the CRM."""

    kind: ContactChangeKind
    contact: Contact
    source_id: str
    merged_into: str | None = None

    @property
    def object_key(self) -> str:
        return f"contact:{self.source_id}"


class InvoicePaid(Event, tag="invoice_paid", frozen=True):
    """A fact from the books: an invoice of this customer is paid in full (balance 0).

    Published by an accounting plugin whenever it sees an invoice become paid in full, whoever created it.
    The core's review-request policy listens; it asks the plugin's `is_first_invoice` hook whether this is
    the customer's first invoice.
    """

    contact: Contact
    customer_id: str
    invoice_id: str
    invoice_number: str | None
    total: Money
    paid_at: datetime

    @property
    def object_key(self) -> str:
        return f"customer:{self.customer_id}"


class ReviewRequest(Model, frozen=True):
    """The message to send: over `channel` ("email" or "sms"), the text with the review link already in it."""

    channel: Literal["email", "sms"]
    message: str
    link: str
    subject: str | None = None


class FirstInvoicePaid(Event, tag="first_invoice_paid", frozen=True):
    """A customer's first invoice is paid in full and the account asks for a review: send `request`.

    Published by the core's review-request policy, at most once per contact, ever, for the account's CRM.
    """

    contact: Contact
    customer_id: str
    invoice_id: str
    invoice_number: str | None
    total: Money
    paid_at: datetime
    request: ReviewRequest | None = None

    @property
    def object_key(self) -> str:
        return f"customer:{self.customer_id}"


class Notification(Event, tag="notification", frozen=True):
    """A vendor's raw notification, stored before it is acknowledged and handed back to its producer.

    Producers use it to acknowledge a webhook fast and durably, then turn it into domain events in the
    background (fetching the full objects, retrying when the vendor is down).
    """

    kind: str
    payload: Any
    object_key: str = "notification"


_encoder = msgspec.json.Encoder(decimal_format="string")


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def event_type(event: Event) -> str:
    return event_type_of(type(event))


def event_type_of(model: type[Event]) -> str:
    """The tag an event model is stored under (its `type` field)."""
    tag = model.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f'{model.__name__} has no event tag: declare it with `tag="..."`')
    return tag
