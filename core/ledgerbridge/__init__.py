"""ledgerbridge: keeps a CRM and an accounting system in step.

The public API for plugin authors is what this package exports; see docs/plugins.md.
"""

from ledgerbridge.cards import CardAction, CardField, CardProgress, CardToggle, IntegrationCard
from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext
from ledgerbridge.errors import PermanentFailure, ReauthorizationRequired, RetryLater, Skip
from ledgerbridge.hookspecs import hookimpl
from ledgerbridge.models import (
    Address,
    Contact,
    ContactSync,
    Discount,
    Event,
    FirstInvoicePaid,
    Invoice,
    InvoiceChange,
    LineItem,
    Money,
    Notification,
    Payment,
    Refund,
    TaxRate,
)
from ledgerbridge.sandboxes import SandboxSpec
from ledgerbridge.tasks import BackgroundTask

__version__ = "0.1.0"

__all__ = [
    "AccountContext",
    "Address",
    "BackgroundTask",
    "CardAction",
    "CardField",
    "CardProgress",
    "CardToggle",
    "Contact",
    "ContactSync",
    "DeliveryContext",
    "Discount",
    "Event",
    "FirstInvoicePaid",
    "IntegrationCard",
    "Invoice",
    "InvoiceChange",
    "LineItem",
    "Money",
    "Notification",
    "Payment",
    "PermanentFailure",
    "PluginContext",
    "ReauthorizationRequired",
    "Refund",
    "RetryLater",
    "SandboxSpec",
    "Skip",
    "TaxRate",
    "__version__",
    "hookimpl",
]
