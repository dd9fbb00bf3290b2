"""The hooks a ledgerbridge plugin can implement.

A plugin is a module, an object, or a class that the core builds with its `PluginContext`, registered under
the `ledgerbridge` entry-point group. It implements any of these functions, decorated with
`ledgerbridge.hookimpl`, under the same names; implementations may take any subset of the arguments, by
name. Every hook marked *async* may be written `async def` or plain `def`.

A plugin declares its **role**: `role = "accounting"` (it keeps the books), `role = "crm"`, or no role (an
observer, which lists the event types it wants in `subscribes`). The core routes each event by role: a CRM
payment goes to the account's one accounting plugin, an accounting customer change to its CRM plugin.

Event hooks are called once per (event, plugin) delivery by the pipeline, only for the plugin the event is
routed to in that account, never for the plugin that produced it. They return nothing; to steer the
delivery they raise one of `ledgerbridge.errors` (`RetryLater`, `ReauthorizationRequired`,
`PermanentFailure`, `Skip`). Any other exception is a transient failure: retried with backoff, then
dead-lettered. A delivery can be repeated (a crash after a side effect, a lease that expired, a skipped event
sent later), so implementations are idempotent: `ctx.idempotency_key` is stable across repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pluggy

if TYPE_CHECKING:
    import msgspec
    from starlette.routing import BaseRoute

    from ledgerbridge.cards import IntegrationCard
    from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext
    from ledgerbridge.models import ContactSync, FirstInvoicePaid, InvoiceChange, InvoicePaid, Notification, Payment
    from ledgerbridge.sandboxes import SandboxSpec
    from ledgerbridge.tasks import BackgroundTask

PROJECT_NAME = "ledgerbridge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# Event hooks (async; one delivery each). Which event reaches which hook: `ledgerbridge.events`.


@hookspec
def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    """Money was taken in the CRM: an order form, a subscription charge or renewal, a membership, a booking.

    async. Routed to the account's accounting plugin. It records the money received for the customer with
    `payment.payer.email`, creating the customer when none exists. A refund re-fires it with
    `payment.refunds` grown: record each refund once.
    """


@hookspec
def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    """A CRM invoice was sent, updated, paid (in part or in full), voided or deleted.

    async. Routed to the account's accounting plugin. `change.invoice` is the invoice's full state after the
    change: the plugin creates its replica when the invoice is first sent and follows later changes.
    """


@hookspec
def on_contact_sync(ctx: DeliveryContext, sync: ContactSync) -> None:
    """A customer exists or changed in the books (initial import, created, updated, merged, deleted).

    async. Routed to the account's CRM plugin, which upserts the contact, matching by e-mail.
    """


@hookspec
def on_invoice_paid(ctx: DeliveryContext, fact: InvoicePaid) -> None:
    """The books show an invoice of this customer paid in full.

    async. Published by accounting plugins; routed only to plugins that subscribe to `invoice_paid` (the
    core's review-request policy does).
    """


@hookspec
def on_first_invoice_paid(ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
    """A customer's first invoice is paid in full and the account wants a review request sent.

    async. Published by the core's review-request policy at most once per contact, ever; routed to the
    account's CRM plugin, which sends `event.request` (channel, message with the link) to the contact.
    """


@hookspec
def on_notification(ctx: DeliveryContext, notification: Notification) -> None:
    """A raw vendor notification that this plugin itself published (`ctx.notify(...)`).

    async. Delivered only to the producing plugin: the place to fetch full objects and publish domain
    events, with the pipeline's retries and ordering. Never delivered to other plugins.
    """


# Questions the core asks a plugin of a role


@hookspec
def is_first_invoice(ctx: AccountContext, customer_id: str, invoice_id: str) -> bool:
    """Is `invoice_id` the customer's first invoice in the books (the earliest one not voided)?

    async. Asked of the account's accounting plugin by the review-request policy, after it has claimed the
    customer, so concurrent facts about one customer never both look it up.
    """
    raise NotImplementedError


@hookspec
def default_review_link(ctx: AccountContext) -> str | None:
    """Where customers leave a review, when the CRM knows it (None when it does not).

    async. Asked of the account's CRM plugin when the review-request form has no link of its own.
    """
    raise NotImplementedError


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


_marker = pluggy.HookimplMarker(PROJECT_NAME)
_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def hookimpl(function: _F, /) -> _F: ...
@overload
def hookimpl(*, tryfirst: bool = False, trylast: bool = False, specname: str | None = None) -> Callable[[_F], _F]: ...
def hookimpl(
    function: _F | None = None, /, *, tryfirst: bool = False, trylast: bool = False, specname: str | None = None
) -> _F | Callable[[_F], _F]:
    """Mark a function or method as a hook implementation, keeping its signature for type checkers."""
    mark = _marker(tryfirst=tryfirst, trylast=trylast, specname=specname)

    def marked(implementation: _F) -> _F:
        marked_implementation: _F = mark(implementation)
        return marked_implementation

    return marked(function) if function is not None else marked


def hook_names() -> list[str]:
    """Every hook name in this module, in definition order."""
    return [name for name, value in globals().items() if _is_spec(value)]


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, f"{PROJECT_NAME}_spec")
