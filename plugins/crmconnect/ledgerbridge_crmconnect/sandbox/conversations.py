"""Conversations: POST /conversations/messages (Version 2021-04-15), recorded so tests can see what was sent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import contacts
from ledgerbridge_crmconnect.sandbox.auth import CONVERSATIONS_VERSION, Ctx, api
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse, ghl_id, now_iso

MESSAGE_TYPES = ("SMS", "RCS", "Email", "WhatsApp", "IG", "FB", "Custom", "Live_Chat", "TIKTOK")
# SendMessageBodyDto's properties (apps/conversations.json): any other is a 422
MESSAGE_FIELDS = frozenset({
    "appointmentId", "attachments", "contactId", "conversationProviderId", "customSubtypeId", "emailBcc", "emailCc",
    "emailFrom", "emailReplyMode", "emailTo", "forward", "fromNumber", "html", "message", "optimizationPeriod",
    "replyMessageId", "scheduledTimestamp", "status", "subType", "subject", "templateId", "threadId", "toNumber",
    "type", "usesNativeSchedulingAi",
})  # fmt: skip


@api(CONVERSATIONS_VERSION)
def send_message(request: Request, ctx: Ctx) -> Response:
    body = ctx.body
    contacts.declared_only(body, MESSAGE_FIELDS)
    problems: list[str] = []
    if body.get("type") not in MESSAGE_TYPES:
        problems.append(f"type must be one of the following values: {', '.join(MESSAGE_TYPES)}")
    if not isinstance(body.get("contactId"), str) or not body["contactId"]:
        problems.append("contactId should not be empty")
    if problems:
        raise ApiError(422, problems)
    contact = contacts.find(ctx.engine, ctx.location_id, body["contactId"])
    if body["type"] == "Email" and not (body.get("html") or body.get("message")):
        raise ApiError(400, "Either html or message is required for an Email")
    if body["type"] == "Email" and not (body.get("emailTo") or contact.get("email")):
        raise ApiError(400, "Contact has no email address")
    if body["type"] == "SMS" and not body.get("message"):
        raise ApiError(400, "message is required for SMS")
    if body["type"] == "SMS" and not (body.get("toNumber") or contact.get("phone")):
        raise ApiError(400, "Contact has no phone number")
    conversation_id = next(
        (m["conversationId"] for m in ctx.engine.state.messages.values() if m["contactId"] == contact["id"]), ghl_id()
    )
    message: Record = {
        "messageId": ghl_id(),
        "conversationId": conversation_id,
        "locationId": ctx.location_id,
        "contactId": contact["id"],
        "type": body["type"],
        "subject": body.get("subject"),
        "message": body.get("message"),
        "html": body.get("html"),
        "to": body.get("emailTo") or contact.get("email")
        if body["type"] == "Email"
        else body.get("toNumber") or contact.get("phone"),
        "sentAt": now_iso(),
    }
    if body["type"] == "Email":
        message["emailMessageId"] = ghl_id()
    ctx.engine.state.messages[message["messageId"]] = message
    out: Record = {
        "conversationId": conversation_id,
        "messageId": message["messageId"],
        "msg": "Message queued successfully.",
        "status": "pending",
    }
    if "emailMessageId" in message:
        out["emailMessageId"] = message["emailMessageId"]
    return JSONResponse(out)


routes = [Route("/conversations/messages", send_message, methods=["POST"])]
