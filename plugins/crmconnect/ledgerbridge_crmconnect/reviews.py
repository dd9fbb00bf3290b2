"""Review requests when QuickBooks shows a customer's first invoice paid: once per contact, ever.

HighLevel has no review-request endpoint, so the request goes out the way the settings say: enrol the
contact in a workflow, add a tag a workflow listens for, or send an e-mail/SMS with the review link.

Exactly-once-ish: a claim `review-request/<contact key>` is taken *before* sending, marked with the
delivery's idempotency key and state `sending`, then set to `sent` after the CRM accepted the request.
- A second event for the same contact finds the claim and does nothing.
- A retry of the same delivery (same idempotency key) finds its own `sending` claim and sends again: the
  one window for a duplicate is a crash between the CRM accepting and the claim turning `sent`.
- A permanent failure releases the claim, so a later event may try again.
"""

from __future__ import annotations

from typing import Any

from ledgerbridge import DeliveryContext, FirstInvoicePaid, PermanentFailure, Skip

from ledgerbridge_crmconnect.client import VERSION_CONVERSATIONS, CrmClient
from ledgerbridge_crmconnect.connection import steering
from ledgerbridge_crmconnect.contacts import CUSTOMER_LINK, find_by_email, upsert
from ledgerbridge_crmconnect.settings import CrmConnectSettings

CLAIM = "review-request"


def contact_key(event: FirstInvoicePaid) -> str:
    email = event.contact.normalized_email
    return f"email:{email}" if email else f"customer:{event.customer_id}"


async def find_contact_id(ctx: DeliveryContext, client: CrmClient, location_id: str, event: FirstInvoicePaid) -> str:
    """The CRM contact: by link from the QuickBooks customer, else by e-mail, else created from the event."""
    link = await ctx.get_link(CUSTOMER_LINK, event.customer_id)
    if link is not None:
        return str(link.remote_id)
    email = event.contact.normalized_email
    if email is None:
        raise PermanentFailure(f"customer {event.customer_id} has no e-mail and no CRM contact to send a review to")
    found = await find_by_email(client, location_id, email)
    contact = found if found is not None else await upsert(client, location_id, event.contact)
    await ctx.put_link(CUSTOMER_LINK, event.customer_id, contact.id, email=email)
    return contact.id


async def send(client: CrmClient, settings: CrmConnectSettings, location_id: str, contact_id: str) -> None:
    if settings.review_method == "workflow":
        if not settings.review_workflow_id:
            raise PermanentFailure("review requests by workflow need review_workflow_id")
        await client.request("POST", f"/contacts/{contact_id}/workflow/{settings.review_workflow_id}", json={})
    elif settings.review_method == "tag":
        if not settings.review_tag:
            raise PermanentFailure("review requests by tag need review_tag")
        await client.request("POST", f"/contacts/{contact_id}/tags", json={"tags": [settings.review_tag]})
    else:
        if not settings.review_link:
            raise PermanentFailure("review requests by message need review_link")
        body: dict[str, Any] = {
            "type": settings.review_message_type,
            "contactId": contact_id,
            "message": settings.review_message(),
        }
        if settings.review_message_type == "Email":
            body["subject"] = settings.review_subject
        # not idempotent: retried only when the CRM surely did not act (429, no connection)
        await client.request("POST", "/conversations/messages", json=body, version=VERSION_CONVERSATIONS)


async def request_review(
    ctx: DeliveryContext, client: CrmClient, settings: CrmConnectSettings, location_id: str, event: FirstInvoicePaid
) -> None:
    if not settings.review_request_enabled:
        raise Skip("review requests are turned off")
    key = contact_key(event)
    mine = {"state": "sending", "delivery": ctx.idempotency_key}
    if not await ctx.claim_once(CLAIM, key, **mine):
        claim = await ctx.get_link(CLAIM, key)
        if claim is None or claim.data != mine:
            raise Skip(f"a review request for {key} was already sent")
    try:
        async with steering():
            contact_id = await find_contact_id(ctx, client, location_id, event)
            await send(client, settings, location_id, contact_id)
    except PermanentFailure:
        await ctx.delete_link(CLAIM, key)
        raise
    await ctx.put_link(CLAIM, key, contact_id, state="sent", method=settings.review_method)
    await ctx.log(f"review request sent to {event.contact.name} by {settings.review_method}", contact_id=contact_id)
