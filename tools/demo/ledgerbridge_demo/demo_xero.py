"""`ledgerbridge demo --books xero`: the same day of business with Xero as the books.

Like the QuickBooks demo it speaks public HTTP only: the admin API, Connect to Xero through the Xero
sandbox's consent page, and the sandbox's control API to act as the Xero user and read its books back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from ledgerbridge_demo.demo import ACCOUNT, QB_CUSTOMERS, Demo, DemoError, Report, _Form, _money, _table, payment_kind

SEEDED = QB_CUSTOMERS  # the same three customers, already in Xero before connecting


class XeroDemo(Demo):
    plugins = ("xero", "crmconnect")
    books_name = "Xero"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.xero = f"{self.url}/sandbox/xero"
        self.tenant = ""
        self.xero_invoice_number = "XR-2001"

    async def xero_control(self, method: str, path: str, body: Any = None) -> Any:
        return await self.call(method, f"{self.xero}/control{path}", body)

    async def books(self, table: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.xero_control("GET", f"/organisations/{self.tenant}/{table}")
        return rows

    # -- the books' side ---------------------------------------------------------------------------------

    async def seed_books(self) -> None:
        with self.stepping("Xero user: an organisation with contacts already on its books"):
            made = await self.xero_control("POST", "/organisations", {"name": "Demo Coaching Co", "currency": "USD"})
            self.tenant = made["tenantId"]
            ids = {}
            for given, family, email in SEEDED:
                contact = await self.xero_control("POST", f"/organisations/{self.tenant}/contacts", {
                    "Name": f"{given} {family}", "FirstName": given, "LastName": family, "EmailAddress": email,
                })  # fmt: skip
                ids[email] = contact["ContactID"]
            last_month = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
            await self.xero_control("POST", f"/organisations/{self.tenant}/invoices", {
                "InvoiceNumber": "XR-0917", "Contact": {"ContactID": ids["grace@example.com"]}, "Date": last_month,
                "DueDate": last_month,
                "LineItems": [{"Description": "Intro session", "Quantity": 1, "UnitAmount": 75, "AccountCode": "200"}],
            })  # fmt: skip

    async def connect_books(self) -> None:
        with self.stepping("admin: Connect to Xero through the Xero sandbox's consent page"):
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            start = await self.call("GET", f"{self.url}/plugins/xero/connect", params={"account": ACCOUNT},
                                    headers=headers, expect=(302, 303))  # fmt: skip
            page = await self.call("GET", start.headers["location"], expect=200)
            form = _Form()
            form.feed(page.text)
            if not form.action or self.tenant not in form.choices.get("tenant_id", []):
                raise DemoError(self.step, "the sandbox's consent page offers no demo organisation")
            fields = {**form.fields, "tenant_id": self.tenant, "action": "allow"}
            consent = await self.call("POST", urljoin(str(page.url), form.action), data=fields, expect=302)
            back = await self.call("GET", consent.headers["location"], expect=(200, 303))
            outcome = (
                dict(parse_qsl(urlsplit(back.headers["location"]).query)) if back.status_code == 303 else back.json()
            )
            if outcome.get("connected") not in ("1", True) or outcome.get("tenant_id") != self.tenant:
                raise DemoError(self.step, f"the callback did not connect the demo organisation: {outcome}")

    async def invoice_in_books(self) -> None:
        with self.stepping("Xero user: Alan's first invoice, then his payment"):
            alan = next((c for c in await self.books("contacts") if c.get("EmailAddress") == "alan@example.com"), None)
            if alan is None:
                raise DemoError(self.step, "the Xero organisation has no contact alan@example.com")
            created = await self.xero_control("POST", f"/organisations/{self.tenant}/invoices", {
                "InvoiceNumber": self.xero_invoice_number, "Contact": {"ContactID": alan["ContactID"]},
                "LineItems": [{"Description": "Strategy day", "Quantity": 1, "UnitAmount": 500, "AccountCode": "200"}],
            })  # fmt: skip
            await self.xero_control("POST", f"/organisations/{self.tenant}/invoices/{created['InvoiceID']}/pay", {})

    def books_link(self) -> str:
        return f"  Xero:       {self.xero}/organisations/{self.tenant}"

    # -- the report ------------------------------------------------------------------------------------

    async def report(self, *, with_contacts: bool) -> Report:
        report = Report()
        received = [t for t in await self.books("bank-transactions") if t["Type"] == "RECEIVE"]
        for txn in await self.crm_payments():
            found = next((t for t in received if f"CRM payment {txn['_id']}" in t.get("Reference", "")), None)
            report.payments.append({
                "kind": payment_kind(txn), "email": txn.get("contactEmail", ""), "crm_total": _money(txn["amount"]),
                "receipt_id": found["BankTransactionID"] if found else None,
                "qb_total": _money(found["Total"]) if found else None,
                "qb_customer": found["Contact"].get("Name", "") if found else "",
            })  # fmt: skip
        invoices = await self.books("invoices")
        if self.crm_invoice:
            crm = await self.crm_api(f"/invoices/{self.crm_invoice['_id']}", altId=self.location, altType="location")
            number = str(crm["invoiceNumber"])
            xero = next((i for i in invoices if i["InvoiceNumber"] == number), None)
            on_it = xero["InvoiceID"] if xero else None
            paid = [p for p in await self.books("payments")
                    if p["Invoice"]["InvoiceID"] == on_it and p["Status"] == "AUTHORISED"]  # fmt: skip
            report.invoices.append({
                "number": number, "status": crm["status"], "email": crm["contactDetails"].get("email", ""),
                "crm_total": _money(crm["total"]), "crm_paid": _money(crm["amountPaid"]),
                "discount": _money(crm.get("totalSummary", {}).get("discount", 0)),
                "invoice_id": xero["InvoiceID"] if xero else None,
                "qb_total": _money(xero["Total"]) if xero else None,
                "qb_balance": _money(xero["AmountDue"]) if xero else None,
                "payment_ids": [p["PaymentID"] for p in paid],
                "qb_paid": _money(sum(Decimal(str(p["Amount"])) for p in paid)),
            })  # fmt: skip
        for row in (i for i in invoices if i["InvoiceNumber"] == self.xero_invoice_number):
            report.qb_invoices.append({
                "id": row["InvoiceID"], "number": row["InvoiceNumber"], "customer": row["Contact"].get("Name", ""),
                "total": _money(row["Total"]), "balance": _money(row["AmountDue"]),
            })  # fmt: skip
        report.reviews = await self.reviews_sent()
        if with_contacts:
            seeded = {email for *_, email in SEEDED}
            for contact in await self.books("contacts"):
                email = contact.get("EmailAddress") or ""
                found = await self.crm_api("/contacts/search/duplicate", locationId=self.location, email=email)
                report.contacts.append({
                    "customer_id": contact["ContactID"], "name": contact["Name"], "email": email,
                    "origin": "imported" if email in seeded else "created for a CRM payment",
                    "contact_id": (found.get("contact") or {}).get("id"),
                })  # fmt: skip
        await self.count_deliveries(report)
        return report

    def render(self, report: Report) -> str:
        return render(report)


def _short(xero_id: str | None) -> str:
    return xero_id[:8] if xero_id else ""


def render(report: Report) -> str:
    lines = ["", "CRM payments -> Xero money received (RECEIVE bank transactions)"]
    lines += _table(
        ["CRM event", "payer", "CRM total", "Xero document", "Xero total"],
        [[f"payment: {p['kind']}", p["email"], f"{p['crm_total']}",
          f"BankTransaction {_short(p['receipt_id'])}" if p["receipt_id"] else "(not synced)",
          f"{p['qb_total']}" if p["qb_total"] is not None else "-"] for p in report.payments],
    )  # fmt: skip
    lines += ["", "CRM invoices -> Xero sales invoices"]
    lines += _table(
        ["CRM invoice", "customer", "CRM status", "CRM total", "CRM paid", "Xero document", "Xero total",
         "Xero due", "Xero payments"],
        [[f"invoice {i['number']}", i["email"], i["status"], f"{i['crm_total']}", f"{i['crm_paid']}",
          f"Invoice {_short(i['invoice_id'])}" if i["invoice_id"] else "(not synced)",
          f"{i['qb_total']}" if i["qb_total"] is not None else "-",
          f"{i['qb_balance']}" if i["qb_balance"] is not None else "-",
          (", ".join(f"Payment {_short(pid)}" for pid in i["payment_ids"]) + f" = {i['qb_paid']}")
          if i["payment_ids"] else "-"]
         for i in report.invoices],
    )  # fmt: skip
    lines += ["", "Xero contacts -> CRM contacts"]
    lines += _table(
        ["Xero contact", "name", "e-mail", "origin", "CRM contact"],
        [[f"Contact {_short(c['customer_id'])}", c["name"], c["email"], c["origin"], c["contact_id"] or "(none)"]
         for c in report.contacts],
    )  # fmt: skip
    lines += ["", "Invoices paid in Xero by the Xero user"]
    lines += _table(
        ["Xero document", "number", "customer", "Xero total", "Xero due"],
        [[f"Invoice {_short(i['id'])}", i["number"], i["customer"], f"{i['total']}", f"{i['balance']}"]
         for i in report.qb_invoices],
    )  # fmt: skip
    lines += ["", "Review requests sent in the CRM (a customer's first Xero invoice paid)"]
    lines += _table(
        ["CRM contact", "e-mail", "channel", "subject"],
        [[r["contact_id"], r["email"], r["type"], r["subject"]] for r in report.reviews],
    )
    lines += ["", f"Deliveries: {report.pending} pending, {report.dead} dead letters"]
    lines += [f"  failing: {text}" for text in report.failing]
    return "\n".join(lines)
