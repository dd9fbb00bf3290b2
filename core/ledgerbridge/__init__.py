"""ledgerbridge: keeps a CRM and an accounting system in step.

The public API for plugin authors is what this package exports; see docs/plugins.md.
"""

from ledgerbridge.cards import CardAction, CardField, CardProgress, CardToggle, IntegrationCard
from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext
from ledgerbridge.errors import ExternalIdTaken, PermanentFailure, ReauthorizationRequired, RetryLater, Skip
from ledgerbridge.events import ROLES, EventType, Role, decode_event, event_types, register_event_type
from ledgerbridge.hookspecs import hookimpl
from ledgerbridge.models import (
    PAYMENT_SOURCES,
    Address,
    Contact,
    ContactChangeKind,
    ContactSync,
    Discount,
    Event,
    FirstInvoicePaid,
    Invoice,
    InvoiceChange,
    InvoiceChangeKind,
    InvoicePaid,
    InvoiceStatus,
    LineItem,
    Money,
    Notification,
    Payment,
    PaymentSourceKind,
    Refund,
    ReviewRequest,
    TaxRate,
    encode_event,
    event_type,
)
from ledgerbridge.outcomes import Outcome
from ledgerbridge.sandboxes import SandboxSpec
from ledgerbridge.tasks import BackgroundTask

__version__ = "0.1.0"

__all__ = [
    "PAYMENT_SOURCES",
    "ROLES",
    "AccountContext",
    "Address",
    "BackgroundTask",
    "CardAction",
    "CardField",
    "CardProgress",
    "CardToggle",
    "Contact",
    "ContactChangeKind",
    "ContactSync",
    "DeliveryContext",
    "Discount",
    "Event",
    "EventType",
    "ExternalIdTaken",
    "FirstInvoicePaid",
    "IntegrationCard",
    "Invoice",
    "InvoiceChange",
    "InvoiceChangeKind",
    "InvoicePaid",
    "InvoiceStatus",
    "LineItem",
    "Money",
    "Notification",
    "Outcome",
    "Payment",
    "PaymentSourceKind",
    "PermanentFailure",
    "PluginContext",
    "ReauthorizationRequired",
    "Refund",
    "RetryLater",
    "ReviewRequest",
    "Role",
    "SandboxSpec",
    "Skip",
    "TaxRate",
    "__version__",
    "decode_event",
    "encode_event",
    "event_type",
    "event_types",
    "hookimpl",
    "register_event_type",
]
