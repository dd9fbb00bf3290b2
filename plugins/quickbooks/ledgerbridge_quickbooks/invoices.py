"""on_invoice_change: mirror a CRM invoice in QuickBooks from the moment it is sent.

Link `invoice`: CRM invoice id → QBO invoice id, with data {sync_token (None when a payment bumped it),
fingerprint of what was last written, total, paid (recorded so far), state open|voided|deleted}.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from ledgerbridge import DeliveryContext, Invoice, InvoiceChange, Skip

from . import customers, errors, names, pricing, wire
from .client import QuickBooksClient, quote_value, request_id
from .service import Service

LINK = "invoice"
MAX_DOC_NUMBER = 21


async def on_invoice_change(ctx: DeliveryContext, service: Service, change: InvoiceChange) -> None:
    invoice = change.invoice
    link = await ctx.get_link(LINK, invoice.invoice_id)
    if link is None and (invoice.status == "draft" or change.kind in ("voided", "deleted")):
        raise Skip(f"invoice {invoice.number} was never sent, so it is not in QuickBooks")
    if link is not None and link.data.get("state") in ("voided", "deleted"):
        raise Skip(f"invoice {invoice.number} is already {link.data['state']} in QuickBooks")
    client = await service.client(ctx)
    sync = _Sync(ctx, service, client, invoice, dict(link.data) if link else None, link.remote_id if link else None)
    if change.kind in ("voided", "deleted"):
        await sync.void_or_delete(delete=change.kind == "deleted")
    else:
        await sync.write()
        if change.kind in ("paid", "partially_paid") or invoice.amount_paid.amount > Decimal(sync.data["paid"]):
            await sync.record_payment()
    await ctx.put_link(LINK, invoice.invoice_id, sync.qbo_id or "", **sync.data)


class _Sync:
    def __init__(
        self,
        ctx: DeliveryContext,
        service: Service,
        client: QuickBooksClient,
        invoice: Invoice,
        data: dict[str, Any] | None,
        qbo_id: str | None,
    ) -> None:
        self.ctx, self.service, self.client, self.invoice = ctx, service, client, invoice
        self.key = ctx.idempotency_key
        self.data: dict[str, Any] = data or {"paid": "0", "state": "open"}
        self.qbo_id = qbo_id

    async def _body(self) -> wire.Invoice:
        setup = await self.service.company(self.client)
        invoice = self.invoice
        customer_id = await customers.resolve(self.ctx, self.service, self.client, invoice.customer, self.key)
        refs = await names.item_refs(self.ctx, self.service, self.client, setup, pricing.item_names(invoice.lines),
                                     self.key)  # fmt: skip
        totals = pricing.Totals(subtotal=invoice.subtotal.amount, discount=invoice.discount_total.amount,
                                tax=invoice.tax_total.amount, total=invoice.total.amount)  # fmt: skip
        priced = pricing.price(invoice.lines, totals, setup, refs)
        email = invoice.customer.email
        return wire.Invoice(
            DocNumber=invoice.number[:MAX_DOC_NUMBER] or None,
            CustomerRef=wire.Ref(value=customer_id),
            TxnDate=invoice.issue_date or invoice.created_at.date(),
            DueDate=invoice.due_date,
            Line=priced.lines,
            ApplyTaxAfterDiscount=priced.apply_tax_after_discount,
            TxnTaxDetail=wire.TxnTaxDetail(TotalTax=Decimal(0)) if setup.us else None,
            BillEmail=wire.EmailAddress(Address=email) if email else None,
            PrivateNote=(f"CRM invoice {invoice.invoice_id}; " + priced.note).strip("; ")[:4000],
        )

    async def write(self) -> None:
        """Create the replica, or update it when what QuickBooks shows of the invoice changed."""
        body = await self._body()
        fingerprint = hashlib.sha256(wire.encode_body(body)).hexdigest()[:24]
        if self.qbo_id is None:
            created = await self._create(body)
            self._remember(created)
        elif fingerprint != self.data.get("fingerprint"):
            updated = await self._update(body)
            self._remember(updated)
        self.data["fingerprint"] = fingerprint
        total = Decimal(self.data.get("total", "0"))
        if pricing.money(total) != pricing.money(self.invoice.total.amount):
            await self.ctx.log(f"QuickBooks invoice {self.qbo_id} total {total} differs from the CRM total "
                               f"{self.invoice.total.amount}", level="warning")  # fmt: skip

    def _remember(self, qbo: wire.Invoice) -> None:
        self.qbo_id = qbo.Id
        self.data["sync_token"] = qbo.SyncToken
        self.data["total"] = str(qbo.TotalAmt if qbo.TotalAmt is not None else "0")

    async def _create(self, body: wire.Invoice) -> wire.Invoice:
        try:
            return await self.client.create(body, request_id(self.key, "inv"))
        except errors.DuplicateDocNumberError:
            # already there (a lost reply before a crash, or typed in by hand): adopt it when it is this customer's
            existing = await self.client.query(
                wire.Invoice, f"SELECT * FROM Invoice WHERE DocNumber = {quote_value(body.DocNumber or '')}"
            )
            same = [
                i
                for i in existing
                if i.CustomerRef and body.CustomerRef and i.CustomerRef.value == body.CustomerRef.value
            ]
            if not same:
                raise
            return await self._update(body, same[0])

    async def _fresh(self) -> wire.Invoice:
        return await self.client.read(wire.Invoice, self.qbo_id or "")

    async def _update(self, body: wire.Invoice, current: wire.Invoice | None = None) -> wire.Invoice:
        token = current.SyncToken if current else self.data.get("sync_token")
        target = current.Id if current else self.qbo_id
        for attempt in range(3):
            if token is None:
                fresh = await self._fresh()
                token, target = fresh.SyncToken, fresh.Id
            try:
                change = wire.Invoice(**{**_members(body), "Id": target, "SyncToken": token})
                return await self.client.update(change, request_id(self.key, f"upd{attempt}"))
            except errors.StaleObjectError:
                if attempt == 2:
                    raise
                token = None  # 5010: someone (a payment) changed it since: re-read and retry
        raise AssertionError("unreachable")

    async def record_payment(self) -> None:
        """A Payment for what the CRM shows paid beyond what is recorded, never above the open balance."""
        recorded = Decimal(self.data["paid"])
        newly = self.invoice.amount_paid.amount - recorded
        balance = Decimal(self.data.get("total", "0")) - recorded
        amount = pricing.money(min(newly, balance))
        if amount <= 0:
            return
        try:
            payment = await self._pay(amount, "pay")
        except errors.FaultError as exc:
            if exc.code != "6000":
                raise
            # the balance in QuickBooks is lower than we know (paid there too): pay at most what is open
            fresh = await self._fresh()
            amount = pricing.money(min(newly, fresh.Balance or Decimal(0)))
            if amount <= 0:
                return
            payment = await self._pay(amount, "pay-r")
        self.data["paid"] = str(recorded + amount)
        self.data["sync_token"] = None  # applying a payment bumps the invoice's SyncToken
        await self.ctx.log(f"recorded a payment of {amount} on QuickBooks invoice {self.qbo_id}",
                           qbo_payment_id=payment.Id)  # fmt: skip

    async def _pay(self, amount: Decimal, step: str) -> wire.Payment:
        customer_id = await customers.resolve(self.ctx, self.service, self.client, self.invoice.customer, self.key)
        line = wire.Line(DetailType="PaymentLine", Amount=amount,
                         LinkedTxn=[wire.LinkedTxn(TxnId=self.qbo_id or "", TxnType="Invoice")])  # fmt: skip
        body = wire.Payment(CustomerRef=wire.Ref(value=customer_id), TotalAmt=amount, Line=[line],
                            PrivateNote=f"CRM invoice {self.invoice.number} payment")  # fmt: skip
        return await self.client.create(body, request_id(self.key, step))

    async def void_or_delete(self, *, delete: bool) -> None:
        """Void with a fresh SyncToken; a CRM delete deletes in QBO unless payments are applied (then void)."""
        for attempt in range(3):
            fresh = await self._fresh()
            has_payments = any(link.TxnType == "Payment" for link in fresh.LinkedTxn or [])
            try:
                if delete and not has_payments:
                    await self.client.delete(wire.Invoice, fresh.Id or "", fresh.SyncToken or "",
                                             request_id(self.key, f"del{attempt}"))  # fmt: skip
                    self.data["state"] = "deleted"
                else:
                    voided = await self.client.void(wire.Invoice, fresh.Id or "", fresh.SyncToken or "",
                                                    request_id(self.key, f"void{attempt}"))  # fmt: skip
                    self._remember(voided)
                    self.data["state"] = "voided"
                return
            except errors.StaleObjectError:
                if attempt == 2:
                    raise


def _members(entity: wire.Invoice) -> dict[str, Any]:
    return {field: getattr(entity, field) for field in entity.__struct_fields__ if getattr(entity, field) is not None}
