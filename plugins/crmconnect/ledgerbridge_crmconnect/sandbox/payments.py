"""Payments: orders, transactions and subscriptions (read by the API; made by the control API's checkouts)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import totals
from ledgerbridge_crmconnect.sandbox.auth import CONTACTS_VERSION, Ctx, api
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import (
    ApiError,
    JSONResponse,
    ghl_id,
    int_param,
    now_iso,
    object_id,
    parse_time,
    secrets_token,
    trace_id,
)

# Checkout kinds the control API can simulate -> the order's source (type, default subType).
KINDS: dict[str, tuple[str, str | None]] = {
    "order_form": ("funnel", "one_step_order_form"),
    "membership": ("membership", None),
    "calendar": ("calendar", "meeting"),
    "payment_link": ("payment_link", None),
    "website": ("website", "store"),
}


def _http_404(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", shape="http_exception")


def contact_snapshot(contact: Record) -> Record:
    snapshot: Record = {"id": contact["id"], "locationId": contact["locationId"]}
    for name in (
        "firstName",
        "lastName",
        "name",
        "email",
        "phone",
        "source",
        "address1",
        "city",
        "state",
        "postalCode",
        "country",
        "companyName",
    ):
        if contact.get(name) is not None:
            snapshot[name] = contact[name]
    snapshot.update(dnd=contact.get("dnd", False), tags=list(contact.get("tags", [])), dateAdded=contact["dateAdded"])
    return snapshot


def _order_item(item: Record, recurring: Record | None) -> Record:
    """An order line the way OrderCreate.md shows it: name, qty, product{…}, price{…}."""
    price: Record = {
        "_id": item.get("priceId") or object_id(),
        "name": item["name"],
        "type": "recurring" if recurring else "one_time",
        "currency": item["currency"],
        "amount": item["amount"],
    }
    if recurring:
        price["recurring"] = recurring
    return {
        "name": item["name"],
        "qty": item["qty"],
        "product": {
            "_id": item.get("productId") or object_id(),
            "name": item["name"],
            "availableInStore": False,
            "taxes": [dict(t) for t in item["taxes"]],
        },
        "price": price,
    }


def _summary(t: totals.Totals) -> tuple[Record, list[Record]]:
    amount_summary = {"subtotal": t.sub_total, "discount": t.discount, "tax": t.tax, "shipping": Decimal(0)}
    tax_summary = [
        {"_id": x.id, "name": x.name, "calculation": x.calculation, "rate": x.rate, "amount": x.amount}
        for x in t.tax_lines
    ]
    return amount_summary, tax_summary


# -- domain ------------------------------------------------------------------------------------------
def checkout(
    engine: SandboxEngine,
    contact: Record,
    kind: str,
    items: list[Record],
    *,
    sub_type: str | None = None,
    discount: Record | None = None,
    currency: str = "USD",
    recurring: Record | None = None,
    source_type: str | None = None,
) -> dict[str, Record]:
    """One paid checkout: an order (OrderCreate then OrderStatusUpdate webhooks) and its transaction."""
    if kind not in KINDS and kind != "subscription":
        raise ApiError(400, f"unknown checkout kind {kind}")
    default_type, default_sub = KINDS.get(kind, ("funnel", "one_step_order_form"))
    s_type = source_type or default_type
    s_sub = default_sub if sub_type is None else (sub_type or None)  # "" means no subType
    t = totals.compute(items, discount)
    amount_summary, tax_summary = _summary(t)
    stamp = now_iso()
    source: Record = {"type": s_type, "id": ghl_id(), "name": f"Sandbox {s_type}", "meta": {}}
    if s_sub:
        source["subType"] = s_sub
    if s_type == "calendar":
        source["meta"] = {"appointmentId": ghl_id()}
    order: Record = {
        "_id": object_id(),
        "locationId": contact["locationId"],
        "contactId": contact["id"],
        "contactSnapshot": contact_snapshot(contact),
        "currency": currency,
        "amount": t.total,
        "amountSummary": amount_summary,
        "taxSummary": tax_summary,
        "items": [_order_item(i, recurring) for i in items],
        "source": source,
        "status": "pending",
        "paymentStatus": "unpaid",
        "fulfillmentStatus": "unfulfilled",
        "liveMode": False,
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    if discount and discount.get("value"):
        order["coupon"] = {"code": "SANDBOX", "type": discount["type"], "value": discount["value"]}
    engine.state.orders[order["_id"]] = order
    engine.emit("OrderCreate", order["locationId"], order_webhook(order))
    result: dict[str, Record] = {"order": order}
    subscription: Record | None = None
    if recurring is not None:
        subscription = _subscription(engine, order, contact, recurring)
        result["subscription"] = subscription
    txn = _transaction(
        engine,
        contact,
        t.total,
        currency,
        entity_type="order",
        entity_id=order["_id"],
        source=source,
        subscription=subscription,
        billing_reason="subscription_create" if subscription else None,
    )
    order.update(status="completed", paymentStatus="paid", updatedAt=now_iso())
    engine.emit("OrderStatusUpdate", order["locationId"], order_webhook(order))
    result["transaction"] = txn
    return result


def _subscription(engine: SandboxEngine, order: Record, contact: Record, recurring: Record) -> Record:
    stamp = now_iso()
    subscription: Record = {
        "_id": object_id(),
        "locationId": order["locationId"],
        "contactId": contact["id"],
        "contactSnapshot": contact_snapshot(contact),
        "currency": order["currency"],
        "amount": order["amount"],
        "status": "active",
        "liveMode": False,
        "entityType": "order",
        "entityId": order["_id"],
        "entitySource": dict(order["source"]),
        "subscriptionId": f"sub_{secrets_token(24)}",
        "paymentProviderType": "stripe",
        "recurringProduct": order["items"][0] if order["items"] else {},
        "schedule": {
            "rrule": {
                "intervalType": recurring.get("interval", "monthly"),
                "interval": recurring.get("intervalCount", 1),
                "startDate": stamp[:10],
            }
        },
        "renewals": 0,
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    engine.state.subscriptions[subscription["_id"]] = subscription
    return subscription


def renew(engine: SandboxEngine, subscription: Record) -> Record:
    """The next billing cycle: a transaction only; HighLevel sends no webhook for renewals."""
    if subscription["status"] != "active":
        raise ApiError(400, f"Subscription is {subscription['status']}")
    contact = engine.state.contacts.get(subscription["contactId"]) or {
        **subscription["contactSnapshot"],
        "locationId": subscription["locationId"],
    }
    subscription["renewals"] += 1
    subscription["updatedAt"] = now_iso()
    return _transaction(
        engine,
        contact,
        subscription["amount"],
        subscription["currency"],
        entity_type="subscription",
        entity_id=subscription["_id"],
        source=subscription["entitySource"],
        subscription=subscription,
        billing_reason="subscription_cycle",
    )


def record_invoice_payment(engine: SandboxEngine, invoice: Record, amount: Decimal, mode: str, notes: str) -> Record:
    """A payment recorded on an invoice appears as a transaction whose source is the invoice."""
    contact = engine.state.contacts.get(invoice["contactDetails"].get("id", "")) or {
        "id": invoice["contactDetails"].get("id", ""),
        "locationId": invoice["locationId"],
        "name": invoice["contactDetails"].get("name"),
        "email": invoice["contactDetails"].get("email"),
        "dateAdded": invoice["createdAt"],
    }
    source = {"type": "invoice", "id": invoice["_id"], "name": invoice["name"], "meta": {}}
    txn = _transaction(
        engine,
        contact,
        amount,
        invoice["currency"],
        entity_type="invoice",
        entity_id=invoice["_id"],
        source=source,
        subscription=None,
        billing_reason=None,
        provider="manual",
    )
    txn["invoiceId"] = invoice["_id"]
    txn["paymentMethod"] = {"mode": mode, "notes": notes}
    return txn


def _transaction(
    engine: SandboxEngine,
    contact: Record,
    amount: Decimal,
    currency: str,
    *,
    entity_type: str,
    entity_id: str,
    source: Record,
    subscription: Record | None,
    billing_reason: str | None,
    provider: str = "stripe",
) -> Record:
    stamp = now_iso()
    txn: Record = {
        "_id": object_id(),
        "locationId": contact["locationId"],
        "contactId": contact["id"],
        "contactSnapshot": contact_snapshot(contact) if "dateAdded" in contact else {},
        "currency": currency,
        "amount": amount,
        "amountRefunded": Decimal(0),
        "status": "succeeded",
        "liveMode": False,
        "entityType": entity_type,
        "entityId": entity_id,
        "entitySource": dict(source),
        "paymentProviderType": provider,
        "meta": {"billingReason": billing_reason} if billing_reason else {},
        "qboSynced": False,
        "createdAt": stamp,
        "updatedAt": stamp,
        "fulfilledAt": stamp,
    }
    if contact.get("name"):
        txn["contactName"] = contact["name"]
    if contact.get("email"):
        txn["contactEmail"] = contact["email"]
    if provider == "stripe":
        txn["chargeId"] = f"ch_{secrets_token(24)}"
        if subscription is not None:
            # Stripe bills a subscription through its own invoices: their id is in invoiceId
            # (GetTxnResponseSchema's example, "in_1KGcXDCScnf89tZohCsmImwE"), not a CRM invoice's
            txn["invoiceId"] = f"in_{secrets_token(24)}"
    if subscription is not None:
        txn["subscriptionId"] = subscription["subscriptionId"]
    engine.state.transactions[txn["_id"]] = txn
    return txn


def refund(engine: SandboxEngine, txn: Record, amount: Decimal | None) -> Record:
    refundable = txn["amount"] - txn["amountRefunded"]
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise ApiError(400, f"Refund amount must be greater than 0 and at most {refundable}")
    txn["amountRefunded"] += amount
    txn["status"] = "refunded" if txn["amountRefunded"] >= txn["amount"] else "partially_refunded"
    txn["updatedAt"] = now_iso()
    order = engine.state.orders.get(txn["entityId"]) if txn["entityType"] == "order" else None
    if order is not None:
        order["paymentStatus"] = "refunded" if txn["status"] == "refunded" else "partially_paid"
        order["updatedAt"] = txn["updatedAt"]
    return txn


# -- rendering ---------------------------------------------------------------------------------------
def order_webhook(order: Record) -> Record:
    """OrderCreate / OrderStatusUpdate bodies (OrderCreate.md); type/locationId added on delivery."""
    keys = (
        "_id",
        "status",
        "taxSummary",
        "fulfillmentStatus",
        "contactId",
        "currency",
        "amount",
        "liveMode",
        "amountSummary",
        "source",
        "createdAt",
        "updatedAt",
        "contactSnapshot",
        "items",
    )
    body: Record = {"altId": order["locationId"], "altType": "location"}
    body.update({k: order[k] for k in keys})
    return body


def render_order(order: Record) -> Record:
    snap = order["contactSnapshot"]
    out: Record = {k: v for k, v in order.items() if k != "locationId"}
    out.update(
        altId=order["locationId"],
        altType="location",
        contactName=snap.get("name") or " ".join(p for p in (snap.get("firstName"), snap.get("lastName")) if p),
        contactEmail=snap.get("email", ""),
        subtotal=order["amountSummary"]["subtotal"],
        discount=order["amountSummary"]["discount"],
        totalProducts=len(order["items"]),
        sourceType=order["source"]["type"],
        sourceName=order["source"].get("name", ""),
        sourceId=order["source"]["id"],
        sourceMeta=order["source"].get("meta", {}),
        onetimeProducts=sum(1 for i in order["items"] if i["price"]["type"] == "one_time"),
        recurringProducts=sum(1 for i in order["items"] if i["price"]["type"] == "recurring"),
    )
    if order["source"].get("subType"):
        out["sourceSubType"] = order["source"]["subType"]
    return out


def render_transaction(txn: Record) -> Record:
    """One shape for list and get: the flat entitySource* fields (list schema) and entitySource (get schema)."""
    out: Record = {k: v for k, v in txn.items() if k != "locationId"}
    source = txn["entitySource"]
    out.update(
        altId=txn["locationId"],
        altType="location",
        entitySourceType=source["type"],
        entitySourceId=source["id"],
        entitySourceName=source.get("name", ""),
        entitySourceMeta=source.get("meta", {}),
        traceId=trace_id(),
    )
    if source.get("subType"):
        out["entitySourceSubType"] = source["subType"]
    return out


def render_subscription(sub: Record) -> Record:
    out: Record = {k: v for k, v in sub.items() if k not in ("locationId", "renewals")}
    snap = sub["contactSnapshot"]
    source = sub["entitySource"]
    out.update(
        altId=sub["locationId"],
        altType="location",
        contactEmail=snap.get("email", ""),
        contactName=snap.get("name") or " ".join(p for p in (snap.get("firstName"), snap.get("lastName")) if p),
        entitySourceType=source["type"],
        entitySourceId=source["id"],
        entitySourceName=source.get("name", ""),
        entitySourceMeta=source.get("meta", {}),
        subscriptionSnapshot={"renewals": sub["renewals"]},
    )
    return out


# -- HTTP --------------------------------------------------------------------------------------------
def _window(q: Any) -> tuple[Any, Any]:
    """startAt/endAt accept dates or date-times; a bare endAt date includes that whole day."""
    start, end_raw = parse_time(q.get("startAt", "")), q.get("endAt", "")
    end = parse_time(end_raw)
    if end is not None and "T" not in end_raw:
        end = end + timedelta(days=1) - timedelta(microseconds=1)
    return start, end


def _filter(records: list[Record], q: Any, flat: dict[str, Any]) -> list[Record]:
    start, end = _window(q)
    out = []
    for record in records:
        created = parse_time(record["createdAt"])
        assert created is not None
        if (start and created < start) or (end and created > end):
            continue
        if any(q.get(param) and getter(record) != q.get(param) for param, getter in flat.items()):
            continue
        out.append(record)
    out.sort(key=lambda r: r["createdAt"], reverse=True)
    return out


def _page(q: Any) -> tuple[int, int]:
    return int_param(q.get("limit"), "limit", 10), int_param(q.get("offset"), "offset", 0)


def _location(ctx: Ctx, q: Any, alt_type_required: bool) -> str:
    if alt_type_required and q.get("altType") != "location":
        raise ApiError(422, ["altType must be one of the following values: location"])
    return ctx.require_location(q.get("altId"), "altId")


@api(CONTACTS_VERSION)
def list_orders(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    location_id = _location(ctx, q, alt_type_required=False)
    found = _filter(
        ctx.engine.state.in_location(ctx.engine.state.orders, location_id),
        q,
        {
            "contactId": lambda r: r["contactId"],
            "status": lambda r: r["status"],
            "paymentStatus": lambda r: r["paymentStatus"],
            "sourceId": lambda r: r["source"]["id"],
        },
    )
    limit, offset = _page(q)
    return JSONResponse({"data": [render_order(o) for o in found[offset : offset + limit]], "totalCount": len(found)})


@api(CONTACTS_VERSION)
def get_order(request: Request, ctx: Ctx) -> Response:
    location_id = _location(ctx, request.query_params, alt_type_required=False)
    order = ctx.engine.state.orders.get(request.path_params["orderId"])
    if order is None or order["locationId"] != location_id:
        raise _http_404("Order")
    return JSONResponse({**render_order(order), "traceId": trace_id()})


@api(CONTACTS_VERSION)
def list_transactions(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    location_id = _location(ctx, q, alt_type_required=True)
    found = _filter(
        ctx.engine.state.in_location(ctx.engine.state.transactions, location_id),
        q,
        {
            "contactId": lambda r: r["contactId"],
            "entitySourceType": lambda r: r["entitySource"]["type"],
            "entitySourceSubType": lambda r: r["entitySource"].get("subType"),
            "subscriptionId": lambda r: r.get("subscriptionId"),
            "entityId": lambda r: r["entityId"],
        },
    )
    limit, offset = _page(q)
    data = [render_transaction(t) for t in found[offset : offset + limit]]
    return JSONResponse({"data": data, "totalCount": len(found)})


@api(CONTACTS_VERSION)
def get_transaction(request: Request, ctx: Ctx) -> Response:
    location_id = _location(ctx, request.query_params, alt_type_required=True)
    txn = ctx.engine.state.transactions.get(request.path_params["transactionId"])
    if txn is None or txn["locationId"] != location_id:
        raise _http_404("Transaction")
    return JSONResponse(render_transaction(txn))


def find_subscription(engine: SandboxEngine, location_id: str, key: str) -> Record | None:
    """By HighLevel id, or (documented leniency) by the provider's subscriptionId a transaction carries."""
    sub = engine.state.subscriptions.get(key)
    if sub is None:
        sub = next((s for s in engine.state.subscriptions.values() if s["subscriptionId"] == key), None)
    return sub if sub is not None and sub["locationId"] == location_id else None


@api(CONTACTS_VERSION)
def list_subscriptions(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    location_id = _location(ctx, q, alt_type_required=True)
    found = _filter(
        ctx.engine.state.in_location(ctx.engine.state.subscriptions, location_id),
        q,
        {
            "contactId": lambda r: r["contactId"],
            "entityId": lambda r: r["entityId"],
            "id": lambda r: r["_id"],
            "entitySourceType": lambda r: r["entitySource"]["type"],
        },
    )
    limit, offset = _page(q)
    data = [render_subscription(s) for s in found[offset : offset + limit]]
    return JSONResponse({"data": data, "totalCount": len(found)})


@api(CONTACTS_VERSION)
def get_subscription(request: Request, ctx: Ctx) -> Response:
    location_id = _location(ctx, request.query_params, alt_type_required=True)
    sub = find_subscription(ctx.engine, location_id, request.path_params["subscriptionId"])
    if sub is None:
        raise _http_404("Subscription")
    return JSONResponse({**render_subscription(sub), "traceId": trace_id()})


routes = [
    Route(path, endpoint, methods=["GET"])
    for paths, endpoint in (
        (("/payments/orders", "/payments/orders/"), list_orders),
        (("/payments/orders/{orderId}",), get_order),
        (("/payments/transactions", "/payments/transactions/"), list_transactions),
        (("/payments/transactions/{transactionId}",), get_transaction),
        (("/payments/subscriptions", "/payments/subscriptions/"), list_subscriptions),
        (("/payments/subscriptions/{subscriptionId}",), get_subscription),
    )
    for path in paths
]
