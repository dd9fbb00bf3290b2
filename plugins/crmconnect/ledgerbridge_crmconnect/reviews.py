"""Sending a review request: the core decides when (once per contact, ever); this sends the message it gives.

HighLevel has no review-request endpoint, so the request is a conversation message (`POST
/conversations/messages`, Email or SMS) to the contact, found through the link from the books' customer,
else by e-mail, else created from the event.

A retry of the same delivery must not send twice: a mark `review-message/<delivery>` is set to `sending`
before the call and `sent` after it. A retry that finds `sent` does nothing; one that finds `sending` sends
again only when the CRM surely did not act (the client retries only on 429 and no connection), so the one
window for a duplicate is a crash between the CRM accepting and the mark turning `sent`.
"""

from __future__ import annotations

from typing import Any

from ledgerbridge import DeliveryContext, FirstInvoicePaid, PermanentFailure, Skip

from ledgerbridge_crmconnect.client import VERSION_CONVERSATIONS, CrmClient
from ledgerbridge_crmconnect.connection import steering
from ledgerbridge_crmconnect.contacts import CUSTOMER_LINK, find_by_email, upsert

MARK = "review-message"
MESSAGE_TYPES = {"email": "Email", "sms": "SMS"}


async def find_contact_id(ctx: DeliveryContext, client: CrmClient, location_id: str, event: FirstInvoicePaid) -> str:
    """The CRM contact: by link from the books' customer, else by e-mail, else created from the event."""
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


async def request_review(ctx: DeliveryContext, client: CrmClient, location_id: str, event: FirstInvoicePaid) -> None:
    request = event.request
    if request is None:
        raise Skip("the event carries no review message to send")
    mark = await ctx.get_link(MARK, ctx.idempotency_key)
    if mark is not None and mark.data.get("state") == "sent":
        return
    async with steering():
        contact_id = await find_contact_id(ctx, client, location_id, event)
        await ctx.put_link(MARK, ctx.idempotency_key, contact_id, state="sending")
        body: dict[str, Any] = {
            "type": MESSAGE_TYPES[request.channel],
            "contactId": contact_id,
            "message": request.message,
        }
        if request.channel == "email":
            body["subject"] = request.subject or "How did we do?"
        await client.request("POST", "/conversations/messages", json=body, version=VERSION_CONVERSATIONS)
    await ctx.put_link(MARK, ctx.idempotency_key, contact_id, state="sent", channel=request.channel)
    await ctx.log(f"Review request sent to {event.contact.name} by {request.channel}", contact_id=contact_id)
