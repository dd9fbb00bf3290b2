"""on_invoice_change: mirror a CRM invoice in QuickBooks from the moment it is sent.

Link `invoice`: CRM invoice id → QBO invoice id ("" while there is none), with data {sync_token (None when a
payment bumped it), fingerprint of what was last written, total, paid (recorded so far), state (see
invoice_state), version (of the change applied), doc_number (when the CRM number was taken)}.

The replica carries the marker `[ledgerbridge invoice <CRM id>]` in its PrivateNote. A QuickBooks invoice
without it was not created here and is never modified, voided or deleted: when the CRM number is already
used by one, the replica is created anyway under a distinguishable number, and Activity says so.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from ledgerbridge import DeliveryContext, Invoice, InvoiceChange, InvoicePaid, Money, Skip

from . import customers, documents, echoes, errors, invoice_state, mapping, markers, pricing, wire
from .client import QuickBooksClient, quote_value, request_id
from .service import Service

LINK = "invoice"
MAX_DOC_NUMBER = 21
RENUMBER_SUFFIX = "-CRM"


async def on_invoice_change(ctx: DeliveryContext, service: Service, change: InvoiceChange) -> None:
    invoice = change.invoice
    link = await ctx.get_link(LINK, invoice.invoice_id)
    data: dict[str, Any] = dict(link.data) if link else {}
    state: invoice_state.State = data.get("state", "none")
    if state == "open" and not (link and link.remote_id):
        state = "none"
    applied = invoice_state.decode_version(data.get("version"))
    step = invoice_state.plan(state, applied, change)
    if step.ignored is not None:
        raise Skip(step.ignored)
    qbo_id = link.remote_id if link and link.remote_id else None
    if step.write or step.pay or step.finish:
        client = await service.client(ctx)
        sync = _Sync(ctx, service, client, invoice, data, qbo_id)
        if step.write:
            await sync.write()
        if step.pay and sync.qbo_id and invoice.amount_paid.amount > Decimal(sync.data["paid"]):
            await sync.record_payment()
        if step.finish:
            await sync.void_or_delete(delete=step.finish == "delete")
        data, qbo_id = sync.data, sync.qbo_id
        if qbo_id:
            number = data.get("doc_number") or invoice.number[:MAX_DOC_NUMBER]
            note = _note(data, Decimal(sync.data.get("total", "0")))
            await ctx.record_outcome(documents.outcome(service, client, "Invoice", qbo_id, number, note))
    data["state"] = data.get("state", step.state) if step.finish else step.state  # a delete may have voided
    if step.advance:
        data["version"] = invoice_state.encode_version(invoice_state.version(change))
    await ctx.put_link(LINK, invoice.invoice_id, qbo_id or "", **data)
    if step.state in ("held_voided", "held_deleted"):
        await ctx.log(f"invoice {invoice.number} was {step.state[5:]} before its \"sent\" arrived: held, so that "
                      "QuickBooks follows when it does")  # fmt: skip


def _note(data: dict[str, Any], total: Decimal) -> str:
    state = data.get("state")
    if state in ("voided", "deleted"):
        return str(state)
    paid = Decimal(data.get("paid", "0"))
    return f"total {pricing.money(total):f}, paid {pricing.money(paid):f}, balance {pricing.money(total - paid):f}"


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
        self.data: dict[str, Any] = {"paid": "0", **(data or {})}
        self.qbo_id = qbo_id

    @property
    def marker(self) -> str:
        return markers.marker("invoice", self.invoice.invoice_id)

    async def _body(self) -> wire.Invoice:
        setup = await self.service.company(self.client)
        invoice = self.invoice
        customer_id = await customers.resolve(self.ctx, self.service, self.client, invoice.customer, self.key)
        refs = await mapping.item_refs(self.ctx, self.service, self.client, setup, invoice.lines, self.key)
        totals = pricing.Totals(subtotal=invoice.subtotal.amount, discount=invoice.discount_total.amount,
                                tax=invoice.tax_total.amount, total=invoice.total.amount)  # fmt: skip
        priced = pricing.price(invoice.lines, totals, setup, refs)
        email = invoice.customer.email
        return wire.Invoice(
            DocNumber=self.data.get("doc_number") or invoice.number[:MAX_DOC_NUMBER] or None,
            CustomerRef=wire.Ref(value=customer_id),
            TxnDate=invoice.issue_date or invoice.created_at.date(),
            DueDate=invoice.due_date,
            Line=priced.lines,
            ApplyTaxAfterDiscount=priced.apply_tax_after_discount,
            TxnTaxDetail=wire.TxnTaxDetail(TotalTax=Decimal(0)) if setup.us else None,
            BillEmail=wire.EmailAddress(Address=email) if email else None,
            PrivateNote=markers.note(self.marker, f"CRM invoice {invoice.number}", priced.note),
        )

    async def write(self) -> None:
        """Create the replica, or update it when what QuickBooks shows of the invoice changed."""
        body = await self._body()
        fingerprint = hashlib.sha256(wire.encode_body(body)).hexdigest()[:24]
        if self.qbo_id is None:
            created = await self._create(body)
            await self._remember(created)
        elif fingerprint != self.data.get("fingerprint"):
            updated = await self._update(body)
            await self._remember(updated)
        self.data["fingerprint"] = fingerprint
        total = Decimal(self.data.get("total", "0"))
        if pricing.money(total) != pricing.money(self.invoice.total.amount):
            await self.ctx.log(f"QuickBooks invoice {self.qbo_id} total {total} differs from the CRM total "
                               f"{self.invoice.total.amount}", level="warning")  # fmt: skip

    async def _remember(self, qbo: wire.Invoice, *, settled: bool | None = None) -> None:
        self.qbo_id = qbo.Id
        self.data["sync_token"] = qbo.SyncToken
        self.data["total"] = str(qbo.TotalAmt if qbo.TotalAmt is not None else "0")
        await echoes.remember(self.ctx, "Invoice", qbo.Id, echoes.stamp_of(qbo), settled=settled)

    async def _create(self, body: wire.Invoice) -> wire.Invoice:
        """Create the replica; an invoice already under its number is ours (a lost reply) or the user's."""
        for attempt in range(2):
            taken = await self._numbered(body.DocNumber)
            ours = [i for i in taken if markers.carries(i, self.marker)]
            if ours:  # created by an earlier attempt whose reply was lost: bring it up to date
                return await self._update(body, ours[0])
            if taken:
                body = await self._renumbered(body, taken[0])
            try:
                return await markers.create_once(self.ctx, self.client, body, what="invoice",
                                                 local_id=self.invoice.invoice_id,
                                                 request_id=request_id(self.key, f"inv{attempt or ''}"))  # fmt: skip
            except errors.DuplicateDocNumberError:
                if attempt:
                    raise
                # taken between the look-up and the create: look again
        raise AssertionError("unreachable")

    async def _numbered(self, number: str | None) -> list[wire.Invoice]:
        if not number:
            return []
        return await self.client.query(wire.Invoice, f"SELECT * FROM Invoice WHERE DocNumber = {quote_value(number)}")

    async def _renumbered(self, body: wire.Invoice, foreign: wire.Invoice) -> wire.Invoice:
        """The replica under the first free `<number>-CRM`, `<number>-CRM2`, … (the user's invoice untouched)."""
        number = body.DocNumber or ""
        candidates = []
        for n in range(1, 6):
            suffix = RENUMBER_SUFFIX + (str(n) if n > 1 else "")
            candidates.append(number[: MAX_DOC_NUMBER - len(suffix)] + suffix)
        listed = ", ".join(quote_value(c) for c in candidates)
        used = {i.DocNumber for i in await self.client.query(
            wire.Invoice, f"SELECT * FROM Invoice WHERE DocNumber IN ({listed})")}  # fmt: skip
        free = next((c for c in candidates if c not in used), None)
        if free is None:
            raise errors.DuplicateDocNumberError(f"invoice numbers {number} to {candidates[-1]} are all taken",
                                                 code="6140")  # fmt: skip
        self.data["doc_number"] = free
        same = foreign.CustomerRef and body.CustomerRef and foreign.CustomerRef.value == body.CustomerRef.value
        whose = "the same customer" if same else "another customer"
        await self.ctx.log(
            f"QuickBooks already has an invoice numbered {number} (for {whose}) that ledgerbridge did not create; "
            f"it was left untouched and CRM invoice {self.invoice.number} was copied as {free}",
            level="warning", qbo_id=foreign.Id,
        )  # fmt: skip
        return msgspec.structs.replace(body, DocNumber=free)

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
        # QuickBooks reports the payment and the invoice it bumped, both stamped with this write: echoes
        stamp = echoes.stamp_of(payment)
        await echoes.remember(self.ctx, "Payment", payment.Id, stamp, invoices=[self.qbo_id])
        await echoes.remember(self.ctx, "Invoice", self.qbo_id, stamp)
        if pricing.money(Decimal(self.data["paid"])) >= pricing.money(Decimal(self.data.get("total", "0"))):
            await self._publish_paid(payment)

    async def _publish_paid(self, payment: wire.Payment) -> None:
        """Our payment paid the invoice in full: the InvoicePaid fact, from what we know, with no read.

        The same external id as when a webhook shows it paid (first_invoice.publish_if_paid), so the fact is
        published once per invoice whichever way it is seen first.
        """
        total = Decimal(self.data.get("total", "0"))
        if total <= 0 or not self.qbo_id:
            return
        customer_id = payment.CustomerRef.value if payment.CustomerRef else ""
        stamp = echoes.stamp_of(payment)
        fact = InvoicePaid(
            contact=msgspec.structs.replace(self.invoice.customer, accounting_id=customer_id),
            customer_id=customer_id,
            invoice_id=self.qbo_id,
            invoice_number=self.data.get("doc_number") or self.invoice.number[:MAX_DOC_NUMBER] or None,
            total=Money(amount=total, currency=self.invoice.total.currency),
            paid_at=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC),
        )
        await self.ctx.publish(fact, external_id=f"invoice-paid:{self.client.realm_id}:{self.qbo_id}")
        await echoes.remember(self.ctx, "Invoice", self.qbo_id, None, settled=True)

    async def _pay(self, amount: Decimal, step: str) -> wire.Payment:
        customer_id = await customers.resolve(self.ctx, self.service, self.client, self.invoice.customer, self.key)
        line = wire.Line(DetailType="PaymentLine", Amount=amount,
                         LinkedTxn=[wire.LinkedTxn(TxnId=self.qbo_id or "", TxnType="Invoice")])  # fmt: skip
        paid_to = f"{self.invoice.invoice_id}:{pricing.money(Decimal(self.data['paid']) + amount):f}"
        note = markers.note(markers.marker("invoice-payment", paid_to), f"CRM invoice {self.invoice.number} payment")
        body = wire.Payment(CustomerRef=wire.Ref(value=customer_id), TotalAmt=amount, Line=[line], PrivateNote=note,
                            DepositToAccountRef=await mapping.deposit_ref(self.ctx, self.client))  # fmt: skip
        return await markers.create_once(self.ctx, self.client, body, what="invoice-payment", local_id=paid_to,
                                         request_id=request_id(self.key, step))  # fmt: skip

    async def void_or_delete(self, *, delete: bool) -> None:
        """Void with a fresh SyncToken; a CRM delete deletes in QBO unless payments are applied (then void)."""
        for attempt in range(3):
            fresh = await self._fresh()
            has_payments = any(link.TxnType == "Payment" for link in fresh.LinkedTxn or [])
            try:
                if delete and not has_payments:
                    await self.client.delete(wire.Invoice, fresh.Id or "", fresh.SyncToken or "",
                                             request_id(self.key, f"del{attempt}"))  # fmt: skip
                    await echoes.remember(self.ctx, "Invoice", fresh.Id, None, settled=True)
                    self.data["state"] = "deleted"
                else:
                    voided = await self.client.void(wire.Invoice, fresh.Id or "", fresh.SyncToken or "",
                                                    request_id(self.key, f"void{attempt}"))  # fmt: skip
                    await self._remember(voided, settled=True)
                    self.data["state"] = "voided"
                return
            except errors.StaleObjectError:
                if attempt == 2:
                    raise


def _members(entity: wire.Invoice) -> dict[str, Any]:
    return {field: getattr(entity, field) for field in entity.__struct_fields__ if getattr(entity, field) is not None}
