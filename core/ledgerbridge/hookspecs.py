"""The hooks a ledgerbridge plugin can implement.

A plugin is a module (or object) registered under the `ledgerbridge` entry-point group; it implements any
of these functions, decorated with `ledgerbridge.hookimpl`, under the same names. Implementations may take
any subset of the arguments, by name. Every hook marked *async* may be written `async def` or plain `def`.

Business hooks are called once per (event, plugin) delivery by the pipeline, only for plugins enabled for
the event's account and never for the plugin that produced the event. They return nothing; to steer the
delivery they raise one of `ledgerbridge.errors` (`RetryLater`, `ReauthorizationRequired`,
`PermanentFailure`, `Skip`). Any other exception is a transient failure: retried with backoff, then
dead-lettered. A delivery can be repeated (a crash after a side effect, a lease that expired), so
implementations are idempotent: `ctx.idempotency_key` is stable across repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import msgspec
    from starlette.routing import BaseRoute

    from ledgerbridge.cards import IntegrationCard
    from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext
    from ledgerbridge.models import ContactSync, FirstInvoicePaid, InvoiceChange, Notification, Payment
    from ledgerbridge.sandboxes import SandboxSpec
    from ledgerbridge.tasks import BackgroundTask

PROJECT_NAME = "ledgerbridge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Hooks called by the delivery pipeline with an event, keyed by event type.
EVENT_HOOKS: dict[str, str] = {
    "payment": "on_payment",
    "invoice_change": "on_invoice_change",
    "contact_sync": "on_contact_sync",
    "first_invoice_paid": "on_first_invoice_paid",
    "notification": "on_notification",
}


# Business hooks (async; one delivery each)


@hookspec
def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    """A payment was taken in the CRM (order form, subscription charge, membership, booking).

    async. Fired by the CRM plugin's webhooks and its reconciliation poller, once per payment (a refund
    re-fires it with `payment.refunds` grown). An accounting plugin records a sales receipt for the
    customer with `payment.payer.email`, creating the customer when none exists.
    """


@hookspec
def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    """A CRM invoice was sent, updated, paid (in part or in full), voided or deleted.

    async. `change.invoice` is the invoice's full state after the change. An accounting plugin mirrors
    it: creates the replica when sent, follows later changes, records payments, voids.
    """


@hookspec
def on_contact_sync(ctx: DeliveryContext, sync: ContactSync) -> None:
    """A customer exists or changed in the accounting system (initial import, created, updated, merged).

    async. The CRM plugin upserts the contact, matching by e-mail.
    """


@hookspec
def on_first_invoice_paid(ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
    """The accounting system shows a customer's first invoice paid in full.

    async. Fired at most once per customer, ever, and only while the review-request toggle is on. The CRM
    plugin sends the contact a review request.
    """


@hookspec
def on_notification(ctx: DeliveryContext, notification: Notification) -> None:
    """A raw vendor notification that this plugin itself published (`ctx.publish(Notification(...))`).

    async. Delivered only to the producing plugin: the place to fetch full objects and publish domain
    events, with the pipeline's retries and ordering. Never delivered to other plugins.
    """


# Plugging in


@hookspec
def register_routes(plugin: PluginContext) -> Sequence[BaseRoute]:
    """Starlette routes (webhook endpoints, OAuth callbacks) mounted at `/plugins/<name>/`.

    sync. Called once at start-up. Routes are public: authenticate requests yourself (signatures,
    one-time `state`); find the account with `plugin.account_for_external_id()` or a nonce.
    """
    raise NotImplementedError


@hookspec
def integration_card(ctx: AccountContext) -> IntegrationCard:
    """The card shown for this plugin under Settings › Integrations for one account.

    async. Called for every installed plugin, enabled or not, whenever the page or the admin API asks.
    """
    raise NotImplementedError


@hookspec
def settings_schema() -> type[msgspec.Struct]:
    """The msgspec Struct type of this plugin's per-account settings; every field needs a default.

    sync. The admin API validates settings against it; `ctx.settings()` returns an instance.
    """
    raise NotImplementedError


@hookspec
def background_tasks(plugin: PluginContext) -> Sequence[BackgroundTask]:
    """Periodic work (pollers, importers, reconcilers), run per account that has the plugin enabled.

    sync. Called once at start-up.
    """
    raise NotImplementedError


@hookspec
def startup(plugin: PluginContext) -> None:
    """The server is starting, the store is open; open clients here. async."""


@hookspec
def shutdown(plugin: PluginContext) -> None:
    """The server is stopping, after the workers have stopped; close clients here. async."""


@hookspec
def register_sandboxes() -> Sequence[SandboxSpec]:
    """Local emulators of the vendor this plugin talks to (`ledgerbridge sandbox NAME`). sync."""
    raise NotImplementedError


def hook_names() -> list[str]:
    """Every hook name in this module, in definition order."""
    return [name for name, value in globals().items() if _is_spec(value)]


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, f"{PROJECT_NAME}_spec")
