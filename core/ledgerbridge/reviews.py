"""Review requests, one feature owned by the core: when a customer's first invoice is paid in full, ask once.

The rule, for every pair of books and CRM:
- An accounting plugin publishes an `InvoicePaid` fact whenever it sees an invoice paid in full.
- This policy claims the contact *before* any look-up (so two facts about one customer never both check or
  both send), then asks the accounting plugin whether that invoice is the customer's first (the earliest one
  not voided). Not the first: the claim is released.
- The first, with the switch on: it publishes `FirstInvoicePaid` with the message to send, for the account's
  CRM plugin, and the contact is marked requested. With the switch off, the moment has passed: the contact is
  marked so, and no request follows later, whatever happens to that invoice.
- Exactly once per contact, ever: the claim is kept for good.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ledgerbridge.context import DeliveryContext, PluginContext
from ledgerbridge.errors import PermanentFailure, RetryLater, Skip
from ledgerbridge.hookspecs import hookimpl
from ledgerbridge.models import FirstInvoicePaid, InvoicePaid, ReviewRequest

CLAIM = "review-request"
DEFAULT_MESSAGE = "Thank you for your business, {name}! Would you tell others how we did? {link}"


class ReviewSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = False
    channel: Literal["email", "sms"] = "email"
    #: where customers leave a review; empty: the link the CRM knows for the location, if any
    review_link: str = ""
    subject: str = "How did we do?"
    message: str = DEFAULT_MESSAGE

    def compose(self, name: str, link: str) -> ReviewRequest:
        text = self.message.replace("{name}", name or "there")
        text = text.replace("{link}", link) if "{link}" in text else f"{text} {link}".strip()
        subject = self.subject if self.channel == "email" else None
        return ReviewRequest(channel=self.channel, message=text, link=link, subject=subject)


def missing(settings: ReviewSettings, default_link: str | None, crm: str | None) -> list[str]:
    """What keeps review requests from working, in words for the settings form; empty when ready."""
    problems = []
    if crm is None:
        problems.append("turn on a CRM plugin: review requests are sent through the CRM")
    if not (settings.review_link or default_link):
        problems.append("set the review link (where customers leave their review)")
    elif settings.review_link and not settings.review_link.startswith(("https://", "http://")):
        problems.append("the review link must be a web address starting with https://")
    if not settings.message.strip():
        problems.append("write the message")
    if settings.channel == "email" and not settings.subject.strip():
        problems.append("write the e-mail subject")
    return problems


def contact_key(fact: InvoicePaid) -> str:
    email = fact.contact.normalized_email
    return f"email:{email}" if email else f"customer:{fact.customer_id}"


class ReviewRequests:
    """The review-request policy, registered like any plugin (`ledgerbridge.plugins.CORE_PLUGINS`)."""

    subscribes = ("invoice_paid",)

    def __init__(self, plugin: PluginContext) -> None:
        self.plugin = plugin

    @hookimpl
    def settings_schema(self) -> type[ReviewSettings]:
        return ReviewSettings

    @hookimpl
    async def on_invoice_paid(self, ctx: DeliveryContext, fact: InvoicePaid) -> None:
        key = contact_key(fact)
        mine = {"state": "checking", "delivery": ctx.idempotency_key}
        if not await ctx.claim_once(CLAIM, key, **mine):
            claim = await ctx.get_link(CLAIM, key)
            if claim is None or (claim.data.get("state") == "checking" and claim.data != mine):
                # another fact about this customer is being checked (and may yet release the claim): wait
                raise RetryLater(f"another paid invoice of {fact.contact.name} is being checked", retry_after=2.0)
            if claim.data != mine:
                state = str(claim.data.get("state"))
                raise Skip(f"{fact.contact.name}: review request already {_PAST.get(state, 'handled')}")
        try:
            first = await ctx.is_first_invoice(fact.customer_id, fact.invoice_id)
        except BaseException:
            await ctx.delete_link(CLAIM, key)  # let the retry (or another fact) check again
            raise
        if not first:
            await ctx.delete_link(CLAIM, key)
            raise Skip(f"invoice {fact.invoice_number or fact.invoice_id} is not {fact.contact.name}'s first invoice")
        settings: ReviewSettings = await ctx.settings()
        if not settings.enabled:
            await ctx.put_link(CLAIM, key, key, state="passed", invoice_id=fact.invoice_id)
            raise Skip(
                f"{fact.contact.name}'s first invoice was paid while review requests were off: none will be sent"
            )
        link = settings.review_link or await ctx.default_review_link()
        if not link:
            await ctx.delete_link(CLAIM, key)
            raise PermanentFailure("review requests need a review link: set one in the review-request form")
        event = FirstInvoicePaid(
            contact=fact.contact,
            customer_id=fact.customer_id,
            invoice_id=fact.invoice_id,
            invoice_number=fact.invoice_number,
            total=fact.total,
            paid_at=fact.paid_at,
            request=settings.compose(fact.contact.given_name or fact.contact.name, link),
        )
        await ctx.publish(event, external_id=f"{CLAIM}:{key}")
        await ctx.put_link(CLAIM, key, key, state="requested", invoice_id=fact.invoice_id)
        await ctx.log(
            f"Review request for {fact.contact.name}: first invoice {fact.invoice_number or fact.invoice_id} paid",
            customer_id=fact.customer_id,
        )


_PAST = {"requested": "sent", "passed": "passed (review requests were off)"}
