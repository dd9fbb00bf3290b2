"""HighLevel API v2 wire structs, named and spelled as the API spells them, decoded leniently.

Unknown fields are ignored, optional fields default, and money decodes to Decimal from JSON numbers or
numeric strings (HighLevel's examples use both). Each struct's `to_domain()` gives the core's model.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
from ledgerbridge import Address, Contact, Discount, Invoice, LineItem, Money, TaxRate

ZERO = Decimal(0)


class Wire(msgspec.Struct, kw_only=True):
    """Base: lenient (unknown fields ignored is msgspec's default)."""


def parse_datetime(value: str | None, default: datetime | None = None) -> datetime:
    """ISO 8601 with or without Z; a bare date is midnight UTC; unparseable gives `default` (or now)."""
    if value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default or datetime.now(UTC)


def parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def currency_code(value: str | None, fallback: str = "USD") -> str:
    code = (value or fallback).strip().upper()
    return code if len(code) == 3 and code.isalpha() else fallback


def money(amount: Decimal | None, currency: str) -> Money:
    return Money(amount=amount if amount is not None else ZERO, currency=currency)


_CRM_ID = re.compile(r"^[0-9a-f]{24}$")


def is_crm_id(value: str | None) -> bool:
    """HighLevel's own object ids are 24-hex MongoDB ids; payment providers' ids (`in_…`, `ch_…`) are not."""
    return bool(value) and _CRM_ID.match(value or "") is not None


def full_name(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


# -- contacts ----------------------------------------------------------------------------------------


class ContactWire(Wire):
    """GetContectByIdSchema, contact webhooks, order `contactSnapshot`s."""

    id: str = ""
    locationId: str | None = None
    email: str | None = None
    name: str | None = None
    contactName: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    companyName: str | None = None
    phone: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postalCode: str | None = None
    country: str | None = None
    tags: list[str] = []

    def to_domain(self) -> Contact:
        name = self.name or self.contactName or full_name(self.firstName, self.lastName) or self.email or self.id
        has_address = any((self.address1, self.city, self.state, self.postalCode, self.country))
        address = (
            Address(
                line1=self.address1,
                city=self.city,
                region=self.state,
                postal_code=self.postalCode,
                country=self.country,
            )
            if has_address
            else None
        )
        return Contact(
            name=name,
            email=self.email or None,
            given_name=self.firstName,
            family_name=self.lastName,
            company_name=self.companyName,
            phone=self.phone,
            address=address,
            crm_id=self.id or None,
        )


class ContactResponse(Wire):
    contact: ContactWire | None = None


class UpsertResponse(Wire, kw_only=True):
    new: bool = False
    contact: ContactWire


# -- invoices ----------------------------------------------------------------------------------------


class ItemTax(Wire):
    _id: str | None = None
    name: str = ""
    rate: Decimal = ZERO
    calculation: str | None = None

    def to_domain(self) -> TaxRate:
        return TaxRate(name=self.name or f"{self.rate}%", rate_percent=self.rate)


class InvoiceItem(Wire):
    name: str = ""
    description: str | None = None
    productId: str | None = None
    currency: str | None = None
    amount: Decimal = ZERO
    qty: Decimal = Decimal(1)
    taxes: list[ItemTax] = []

    def to_domain(self, currency: str) -> LineItem:
        return LineItem(
            name=self.name or "Item",
            quantity=self.qty,
            unit_price=Money(amount=self.amount, currency=currency),
            description=self.description or None,
            sku=self.productId,
            taxes=tuple(t.to_domain() for t in self.taxes),
        )


class DiscountWire(Wire):
    type: str = "percentage"
    value: Decimal = ZERO

    def to_domain(self) -> Discount | None:
        if not self.value:
            return None
        return Discount(kind="fixed" if self.type == "fixed" else "percentage", value=self.value)


class AddressWire(Wire):
    addressLine1: str | None = None
    addressLine2: str | None = None
    city: str | None = None
    state: str | None = None
    countryCode: str | None = None
    postalCode: str | None = None

    def to_domain(self) -> Address | None:
        if not any((self.addressLine1, self.addressLine2, self.city, self.state, self.countryCode, self.postalCode)):
            return None
        return Address(
            line1=self.addressLine1,
            line2=self.addressLine2,
            city=self.city,
            region=self.state,
            postal_code=self.postalCode,
            country=self.countryCode,
        )


class ContactDetails(Wire):
    id: str | None = None
    name: str | None = None
    email: str | None = None
    phoneNo: str | None = None
    companyName: str | None = None
    address: AddressWire | None = None

    def to_domain(self) -> Contact:
        return Contact(
            name=self.name or self.companyName or self.email or self.id or "Unknown customer",
            email=self.email or None,
            company_name=self.companyName or None,
            phone=self.phoneNo or None,
            address=self.address.to_domain() if self.address else None,
            crm_id=self.id or None,
        )


class TotalSummary(Wire):
    subTotal: Decimal = ZERO
    discount: Decimal = ZERO
    tax: Decimal = ZERO


# HighLevel's statuses → the domain's (the words any CRM has): a payment still processing leaves the invoice open.
INVOICE_STATUSES = {"draft": "draft", "sent": "sent", "payment_processing": "sent", "partially_paid": "partially_paid",
                    "paid": "paid", "void": "void"}  # fmt: skip


class InvoiceWire(Wire):
    """GetInvoiceResponseDto; invoice webhooks are the same object (location in `altId`)."""

    _id: str = ""
    status: str = "draft"
    altId: str | None = None
    name: str | None = None
    invoiceNumber: str | int | None = None
    currency: str | None = None
    total: Decimal | None = None
    amountPaid: Decimal = ZERO
    amountDue: Decimal | None = None
    discount: DiscountWire | None = None
    invoiceItems: list[InvoiceItem] | None = None
    contactDetails: ContactDetails | None = None
    issueDate: str | None = None
    dueDate: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    totalSummary: TotalSummary | None = None

    @property
    def is_complete(self) -> bool:
        """Webhook payloads may be partial; only a complete invoice can be mirrored."""
        return (
            bool(self._id)
            and self.invoiceItems is not None
            and self.total is not None
            and self.totalSummary is not None
            and self.contactDetails is not None
        )

    def to_domain(self, *, deleted: bool = False) -> Invoice:
        currency = currency_code(self.currency)
        summary = self.totalSummary or TotalSummary()
        items = self.invoiceItems or []
        total = self.total if self.total is not None else summary.subTotal - summary.discount + summary.tax
        due = self.amountDue if self.amountDue is not None else max(total - self.amountPaid, ZERO)
        created = parse_datetime(self.createdAt)
        status: Any = "deleted" if deleted else INVOICE_STATUSES.get(self.status, "sent")
        return Invoice(
            invoice_id=self._id,
            number=str(self.invoiceNumber) if self.invoiceNumber is not None else "",
            status=status,
            customer=(self.contactDetails or ContactDetails()).to_domain(),
            lines=tuple(item.to_domain(currency) for item in items),
            subtotal=money(summary.subTotal, currency),
            discount_total=money(summary.discount, currency),
            tax_total=money(summary.tax, currency),
            total=money(total, currency),
            amount_paid=money(self.amountPaid, currency),
            amount_due=money(due, currency),
            created_at=created,
            discount=self.discount.to_domain() if self.discount else None,
            issue_date=parse_date(self.issueDate),
            due_date=parse_date(self.dueDate),
            updated_at=parse_datetime(self.updatedAt, created) if self.updatedAt else None,
        )


# -- payments ----------------------------------------------------------------------------------------


class Source(Wire):
    type: str | None = None
    subType: str | None = None
    id: str | None = None
    name: str | None = None


class Price(Wire):
    _id: str | None = None
    name: str | None = None
    type: str | None = None
    currency: str | None = None
    amount: Decimal = ZERO


class Product(Wire):
    _id: str | None = None
    name: str | None = None
    taxes: list[ItemTax] = []


class OrderItem(Wire):
    name: str = ""
    qty: Decimal = Decimal(1)
    price: Price | None = None
    product: Product | None = None

    @property
    def recurring(self) -> bool:
        return self.price is not None and self.price.type == "recurring"

    def to_domain(self, currency: str) -> LineItem:
        price = self.price or Price()
        product = self.product or Product()
        return LineItem(
            name=self.name or product.name or price.name or "Item",
            quantity=self.qty,
            unit_price=Money(amount=price.amount, currency=currency),
            sku=product._id,
            taxes=tuple(t.to_domain() for t in product.taxes),
        )


class AmountSummary(Wire):
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    tax: Decimal = ZERO
    shipping: Decimal = ZERO


class OrderWire(Wire):
    """GetOrderResponseSchema; OrderCreate/OrderStatusUpdate webhooks carry the same fields."""

    _id: str = ""
    altId: str | None = None
    contactId: str | None = None
    contactSnapshot: ContactWire | None = None
    currency: str | None = None
    amount: Decimal = ZERO
    amountSummary: AmountSummary | None = None
    items: list[OrderItem] = []
    source: Source | None = None
    status: str | None = None
    paymentStatus: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None

    @property
    def is_paid(self) -> bool:
        if self.paymentStatus is not None:
            return self.paymentStatus in ("paid", "partially_paid", "refunded")
        return self.status == "completed"

    @property
    def recurring(self) -> bool:
        return any(item.recurring for item in self.items)


class TransactionSource(Wire):
    type: str | None = None
    subType: str | None = None
    id: str | None = None


class TransactionMeta(Wire):
    billingReason: str | None = None


class TransactionWire(Wire):
    """A row of GET /payments/transactions (also GET /payments/transactions/{id})."""

    _id: str = ""
    altId: str | None = None
    contactId: str | None = None
    contactName: str | None = None
    contactEmail: str | None = None
    contactSnapshot: ContactWire | None = None
    currency: str | None = None
    amount: Decimal = ZERO
    amountRefunded: Decimal = ZERO
    status: str | None = None
    entityType: str | None = None
    entityId: str | None = None
    entitySourceType: str | None = None
    entitySourceSubType: str | None = None
    entitySource: TransactionSource | None = None
    subscriptionId: str | None = None
    chargeId: str | None = None
    paymentProviderType: str | None = None
    meta: TransactionMeta | None = None
    invoiceId: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None

    @property
    def source_type(self) -> str | None:
        return self.entitySourceType or (self.entitySource.type if self.entitySource else None)

    @property
    def source_sub_type(self) -> str | None:
        return self.entitySourceSubType or (self.entitySource.subType if self.entitySource else None)

    @property
    def took_money(self) -> bool:
        return self.status in ("succeeded", "refunded", "partially_refunded")

    @property
    def crm_invoice_id(self) -> str | None:
        """The CRM invoice this transaction paid, if any.

        `invoiceId` alone is not enough: a Stripe-backed charge carries Stripe's invoice id there
        (`in_…`, GetTxnResponseSchema's own example), which is the provider's document, not a CRM invoice.
        """
        if self.entityType == "invoice" and self.entityId:
            return self.entityId
        if self.source_type == "invoice":
            source_id = self.entitySource.id if self.entitySource else None
            return source_id or self.entityId or (self.invoiceId if is_crm_id(self.invoiceId) else None)
        return self.invoiceId if is_crm_id(self.invoiceId) else None

    @property
    def is_invoice_payment(self) -> bool:
        """Invoice payments reach accounting as invoice changes, never as sales receipts."""
        return self.crm_invoice_id is not None or self.entityType == "invoice" or self.source_type == "invoice"

    def payer(self) -> Contact:
        snapshot = self.contactSnapshot or ContactWire()
        contact = snapshot.to_domain() if (snapshot.id or snapshot.email) else None
        email = self.contactEmail or (contact.email if contact else None)
        name = self.contactName or (contact.name if contact else None) or email or self.contactId or "Unknown payer"
        if contact is None:
            return Contact(name=name, email=email or None, crm_id=self.contactId)
        return msgspec.structs.replace(contact, name=name, email=email or None, crm_id=contact.crm_id or self.contactId)


class TransactionList(Wire):
    data: list[TransactionWire] = []
    totalCount: int = 0


class SubscriptionWire(Wire):
    _id: str = ""
    entityType: str | None = None
    entityId: str | None = None
    subscriptionId: str | None = None
    amount: Decimal = ZERO
    currency: str | None = None
    recurringProduct: OrderItem | None = None


# -- webhooks ----------------------------------------------------------------------------------------


class WebhookEnvelope(Wire):
    """The fields every delivery is routed by; the rest of the body is the event's object."""

    type: str | None = None
    locationId: str | None = None
    altId: str | None = None
    timestamp: str | None = None
    webhookId: str | None = None
    _id: str | None = None
    id: str | None = None

    @property
    def location(self) -> str | None:
        return self.locationId or self.altId

    @property
    def object_id(self) -> str | None:
        return self._id or self.id


contact_response = msgspec.json.Decoder(ContactResponse)
upsert_response = msgspec.json.Decoder(UpsertResponse)
invoice_decoder = msgspec.json.Decoder(InvoiceWire)
order_decoder = msgspec.json.Decoder(OrderWire)
transaction_decoder = msgspec.json.Decoder(TransactionWire)
transaction_list = msgspec.json.Decoder(TransactionList)
subscription_decoder = msgspec.json.Decoder(SubscriptionWire)
any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
