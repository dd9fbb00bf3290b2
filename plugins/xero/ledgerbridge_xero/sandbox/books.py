"""One Xero organisation's books: contacts, invoices, payments, bank transactions, accounts, tax rates, items.

Documents are kept in Xero's own JSON shape (money as Decimal); `render` turns one into what the API sends.
Every change records a webhook event for the CONTACT and INVOICE categories, as Xero's webhooks do.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from . import dates, totals
from .errors import NotFound, ValidationFailed

ZERO = Decimal("0")
DUPLICATE_NAME = (
    "The contact name {name} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)
EDIT_PAID = "This document cannot be edited as it has a payment or credit note allocated to it."


def new_id() -> str:
    return str(uuid.uuid4())


def _accounts(country: str) -> list[dict[str, Any]]:
    sales_tax = "OUTPUT" if country != "US" else "NONE"
    return [
        {
            "Code": "090",
            "Name": "Business Bank Account",
            "Type": "BANK",
            "BankAccountType": "BANK",
            "BankAccountNumber": "0011223344",
            "TaxType": "NONE",
            "Class": "ASSET",
        },
        {
            "Code": "091",
            "Name": "Business Savings Account",
            "Type": "BANK",
            "BankAccountType": "BANK",
            "BankAccountNumber": "0099887766",
            "TaxType": "NONE",
            "Class": "ASSET",
        },
        {"Code": "200", "Name": "Sales", "Type": "REVENUE", "TaxType": sales_tax, "Class": "REVENUE"},
        {"Code": "260", "Name": "Other Revenue", "Type": "REVENUE", "TaxType": sales_tax, "Class": "REVENUE"},
        {
            "Code": "610",
            "Name": "Accounts Receivable",
            "Type": "CURRENT",
            "TaxType": "NONE",
            "Class": "ASSET",
            "SystemAccount": "DEBTORS",
        },
        {"Code": "820", "Name": "Sales Tax", "Type": "CURRLIAB", "TaxType": "NONE", "Class": "LIABILITY"},
    ]


def _tax_rates(country: str) -> list[dict[str, Any]]:
    def rate(tax_type: str, name: str, percent: str, report: str) -> dict[str, Any]:
        value = Decimal(percent)
        return {
            "Name": name,
            "TaxType": tax_type,
            "ReportTaxType": report,
            "Status": "ACTIVE",
            "TaxComponents": [{"Name": name, "Rate": value, "IsCompound": False, "IsNonRecoverable": False}],
            "DisplayTaxRate": value,
            "EffectiveRate": value,
            "CanApplyToAssets": True,
            "CanApplyToEquity": True,
            "CanApplyToExpenses": True,
            "CanApplyToLiabilities": True,
            "CanApplyToRevenue": True,
        }

    if country == "US":
        return [rate("NONE", "Tax Exempt", "0", "NONE"), rate("TAX001", "Sales Tax", "8.25", "OUTPUT")]
    return [
        rate("NONE", "No VAT", "0", "NONE"),
        rate("OUTPUT2", "20% (VAT on Income)", "20", "OUTPUT"),
        rate("RROUTPUT", "5% (VAT on Income)", "5", "OUTPUT"),
        rate("ZERORATEDOUTPUT", "Zero Rated Income", "0", "OUTPUT"),
    ]


@dataclass
class Event:
    category: str  # CONTACT | INVOICE
    kind: str  # CREATE | UPDATE
    resource_id: str
    at: float


@dataclass
class Organisation:
    tenant_id: str
    name: str
    currency: str = "USD"
    country: str = "US"
    clock: Callable[[], float] = time.time
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    bank_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tax_rates: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.accounts:
            for account in _accounts(self.country):
                account_id = new_id()
                self.accounts[account_id] = {
                    "AccountID": account_id,
                    "Status": "ACTIVE",
                    **account,
                    "_updated": self.clock(),
                }
        if not self.tax_rates:
            for rate in _tax_rates(self.country):
                self.tax_rates[rate["TaxType"]] = rate

    # look-ups

    def _stamp(self, document: dict[str, Any]) -> None:
        document["_updated"] = self.clock()

    def _event(self, category: str, kind: str, resource_id: str) -> None:
        self.events.append(Event(category, kind, resource_id, self.clock()))

    def contact(self, contact_id: str) -> dict[str, Any]:
        found = self.contacts.get(str(contact_id).lower())
        if found is None:
            raise NotFound(contact_id)
        return found

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        found = self.invoices.get(str(invoice_id).lower())
        if found is None:
            raise NotFound(invoice_id)
        return found

    def account_by(self, ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        for account in self.accounts.values():
            if account["Status"] != "ACTIVE":
                continue
            if ref.get("AccountID") and str(ref["AccountID"]).lower() == account["AccountID"]:
                return account
            if ref.get("Code") and ref["Code"] == account.get("Code"):
                return account
        return None

    def revenue_rates(self) -> dict[str, Decimal]:
        return {
            t: Decimal(r["EffectiveRate"])
            for t, r in self.tax_rates.items()
            if r["Status"] == "ACTIVE" and r.get("CanApplyToRevenue")
        }

    # contacts

    def _active_name_taken(self, name: str, except_id: str | None) -> bool:
        wanted = name.strip().lower()
        return any(
            c["Name"].strip().lower() == wanted and c["ContactStatus"] == "ACTIVE" and c["ContactID"] != except_id
            for c in self.contacts.values()
        )

    def save_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create, or update when ContactID names an existing contact (POST /Contacts semantics)."""
        if not isinstance(body, dict):
            raise ValidationFailed({}, ["A contact must be an object"])
        contact_id = str(body.get("ContactID") or "").lower()
        existing = self.contacts.get(contact_id) if contact_id else None
        if contact_id and existing is None:
            raise ValidationFailed(body, [f"The contact ID {contact_id} could not be found"])
        name = body.get("Name", existing["Name"] if existing else None)
        errors = []
        if not isinstance(name, str) or not name.strip():
            errors.append("The contact name must be specified.")
        elif len(name) > 255:
            errors.append("The contact name must not exceed 255 characters.")
        elif self._active_name_taken(name, existing["ContactID"] if existing else None):
            errors.append(DUPLICATE_NAME.format(name=name))
        email = body.get("EmailAddress")
        if email is not None and (not isinstance(email, str) or (email and "@" not in email)):
            errors.append("Email address must be valid.")
        if errors:
            raise ValidationFailed(body, errors)
        editable = {k: v for k, v in body.items() if k not in ("ContactID", "UpdatedDateUTC", "Balances")}
        if existing is not None:
            existing.update(editable)
            self._stamp(existing)
            self._event("CONTACT", "UPDATE", existing["ContactID"])
            return existing
        contact = {
            "ContactID": new_id(),
            "ContactStatus": "ACTIVE",
            "IsSupplier": False,
            "IsCustomer": False,
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasValidationErrors": False,
            **editable,
        }
        self._stamp(contact)
        self.contacts[contact["ContactID"]] = contact
        self._event("CONTACT", "CREATE", contact["ContactID"])
        return contact

    def _contact_ref(self, ref: Any, errors: list[str]) -> dict[str, Any] | None:
        """An invoice's Contact: by ContactID, else by Name (Xero creates a contact for an unknown name)."""
        if not isinstance(ref, dict):
            errors.append("A Contact must be specified for this type of transaction")
            return None
        if ref.get("ContactID"):
            found = self.contacts.get(str(ref["ContactID"]).lower())
            if found is None:
                errors.append(f"The contact with ID {ref['ContactID']} could not be found")
            return found
        name = ref.get("Name")
        if isinstance(name, str) and name.strip():
            for contact in self.contacts.values():
                if contact["Name"].strip().lower() == name.strip().lower() and contact["ContactStatus"] == "ACTIVE":
                    return contact
            return self.save_contact({k: v for k, v in ref.items() if k != "ContactID"})
        errors.append("A Contact must be specified for this type of transaction")
        return None

    # invoices and bank transactions

    def _lines(self, body: dict[str, Any], lines: Any, errors: list[str], need_account: bool) -> totals.Priced:
        amount_types = body.get("LineAmountTypes") or "Exclusive"
        if amount_types not in totals.LINE_AMOUNT_TYPES:
            errors.append(f"LineAmountTypes must be one of Exclusive, Inclusive or NoTax, not {amount_types}")
            amount_types = "Exclusive"
        if not isinstance(lines, list):
            errors.append("LineItems must be a list")
            lines = []
        filled = []
        for line in lines:
            if not isinstance(line, dict):
                errors.append("Each line item must be an object")
                continue
            line = dict(line)
            item = next(
                (i for i in self.items.values() if line.get("ItemCode") and i["Code"] == line["ItemCode"]), None
            )
            if line.get("ItemCode") and item is None:
                errors.append(f"Item code '{line['ItemCode']}' is not valid")
            if item is not None:
                sales = item.get("SalesDetails") or {}
                line.setdefault("Description", item.get("Description") or item.get("Name"))
                line.setdefault("UnitAmount", sales.get("UnitPrice"))
                line.setdefault("AccountCode", sales.get("AccountCode"))
            if not line.get("Description") and not line.get("ItemCode"):
                errors.append("Description cannot be empty.")
            account = self.account_by({"Code": line.get("AccountCode"), "AccountID": line.get("AccountID")})
            if line.get("AccountCode") or line.get("AccountID"):
                if account is None:
                    errors.append(
                        f"Account code '{line.get('AccountCode') or line.get('AccountID')}' "
                        "is not a valid code for this document."
                    )
                elif account["Type"] == "BANK":
                    errors.append(f"Account code '{account['Code']}' is a bank account and cannot be used on a line")
            elif need_account:
                errors.append("Account code '' is not a valid code for this document.")
            if account is not None and not line.get("TaxType"):
                line["TaxType"] = account.get("TaxType") or "NONE"
            filled.append(line)
        priced = totals.price(filled, amount_types, self.revenue_rates(), errors)
        for line in priced.lines:
            line.setdefault("LineItemID", new_id())
        return priced

    def _currency(self, body: dict[str, Any], errors: list[str]) -> str:
        currency = body.get("CurrencyCode") or self.currency
        if currency != self.currency:
            errors.append(f"Organisation is not subscribed to currency {currency}")
        return str(currency)

    def _day(self, value: Any, default: date | None, label: str, errors: list[str]) -> date | None:
        if value in (None, ""):
            return default
        parsed = dates.parse_day(value)
        if parsed is None:
            errors.append(f"{label} is not a valid date")
        return parsed

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def save_invoice(self, body: dict[str, Any], invoice_id: str | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValidationFailed({}, ["An invoice must be an object"])
        invoice_id = str(invoice_id or body.get("InvoiceID") or "").lower() or None
        existing = self.invoices.get(invoice_id) if invoice_id else None
        if invoice_id and existing is None:
            raise NotFound(invoice_id)
        if existing is not None:
            return self._update_invoice(existing, body)
        errors: list[str] = []
        kind = body.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be ACCREC or ACCPAY")
        status = body.get("Status") or "DRAFT"
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Invoice Status cannot be {status} when creating an invoice")
        contact = self._contact_ref(body.get("Contact"), errors)
        priced = self._lines(body, body.get("LineItems") or [], errors, need_account=status == "AUTHORISED")
        if status == "AUTHORISED" and not priced.lines:
            errors.append("At least one line item is required to approve an invoice")
        currency = self._currency(body, errors)
        day = self._day(body.get("Date"), self.today(), "Date", errors)
        due = self._day(body.get("DueDate"), None, "DueDate", errors)
        if status == "AUTHORISED" and due is None:
            errors.append("Due Date is required.")
        number = body.get("InvoiceNumber")
        if kind == "ACCREC":
            if number and any(
                i["InvoiceNumber"] == number and i["Type"] == "ACCREC" and i["Status"] != "DELETED"
                for i in self.invoices.values()
            ):
                errors.append("Invoice # must be unique.")
            number = number or f"INV-{sum(1 for i in self.invoices.values() if i['Type'] == 'ACCREC') + 1:04d}"
        if priced.total < 0:
            errors.append("Invoice total cannot be negative")
        if errors:
            raise ValidationFailed(body, errors)
        assert contact is not None and day is not None
        invoice = {
            "Type": kind,
            "InvoiceID": new_id(),
            "InvoiceNumber": number or "",
            "Reference": body.get("Reference", ""),
            "Contact": self._contact_summary(contact),
            "Date": dates.msdate_of_day(day),
            "DateString": f"{day}T00:00:00",
            "DueDate": dates.msdate_of_day(due) if due else None,
            "DueDateString": f"{due}T00:00:00" if due else None,
            "Status": status,
            "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive",
            "LineItems": priced.lines,
            "SubTotal": priced.sub_total,
            "TotalTax": priced.total_tax,
            "Total": priced.total,
            "TotalDiscount": priced.total_discount,
            "CurrencyCode": currency,
            "CurrencyRate": Decimal(1),
            "AmountDue": priced.total,
            "AmountPaid": ZERO,
            "AmountCredited": ZERO,
            "Payments": [],
            "IsDiscounted": priced.total_discount > 0,
            "HasAttachments": False,
            "HasErrors": False,
            "SentToContact": False,
        }
        invoice = {k: v for k, v in invoice.items() if v is not None}
        self._stamp(invoice)
        self.invoices[invoice["InvoiceID"]] = invoice
        self._event("INVOICE", "CREATE", invoice["InvoiceID"])
        return invoice

    def _contact_summary(self, contact: dict[str, Any]) -> dict[str, Any]:
        keys = ("ContactID", "Name", "EmailAddress", "ContactStatus")
        return {k: contact[k] for k in keys if k in contact}

    def _update_invoice(self, invoice: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        status = body.get("Status", invoice["Status"])
        current = invoice["Status"]
        touches_content = any(k in body for k in ("LineItems", "Contact", "LineAmountTypes", "CurrencyCode"))
        if current in ("VOIDED", "DELETED"):
            raise ValidationFailed(body, [f"This document cannot be edited as it is {current.lower()}."])
        if status == "VOIDED":
            if current not in ("AUTHORISED", "PAID") or invoice["AmountPaid"] > 0:
                raise ValidationFailed(
                    body,
                    [
                        EDIT_PAID
                        if invoice["AmountPaid"] > 0
                        else "Only AUTHORISED invoices can be voided; delete a draft instead."
                    ],
                )
            invoice["Status"] = "VOIDED"
            for line in invoice["LineItems"]:
                line.update(TaxAmount=ZERO)
            invoice.update(AmountDue=ZERO)
            return self._touched(invoice)
        if status == "DELETED":
            if current not in ("DRAFT", "SUBMITTED"):
                raise ValidationFailed(body, ["Only DRAFT or SUBMITTED invoices can be deleted; void it instead."])
            invoice["Status"] = "DELETED"
            return self._touched(invoice)
        if current == "PAID" or (touches_content and invoice["AmountPaid"] > 0):
            raise ValidationFailed(body, [EDIT_PAID])
        order = ["DRAFT", "SUBMITTED", "AUTHORISED"]
        if status not in order or order.index(status) < order.index(current):
            raise ValidationFailed(body, [f"Invoice status cannot change from {current} to {status}"])
        errors: list[str] = []
        merged = {**invoice, **{k: v for k, v in body.items() if k not in ("InvoiceID", "Type")}}
        contact = self._contact_ref(merged.get("Contact"), errors)
        priced = self._lines(merged, merged.get("LineItems") or [], errors, need_account=status == "AUTHORISED")
        self._currency(merged, errors)
        day = self._day(body.get("Date"), None, "Date", errors)
        due = self._day(body.get("DueDate"), None, "DueDate", errors)
        number = body.get("InvoiceNumber")
        if (
            number
            and number != invoice["InvoiceNumber"]
            and any(
                i["InvoiceNumber"] == number and i["Type"] == "ACCREC" and i["Status"] != "DELETED"
                for i in self.invoices.values()
            )
        ):
            errors.append("Invoice # must be unique.")
        if status == "AUTHORISED" and "DueDate" not in invoice and due is None:
            errors.append("Due Date is required.")
        if errors:
            raise ValidationFailed(body, errors)
        assert contact is not None
        invoice.update(
            Status=status,
            Contact=self._contact_summary(contact),
            LineItems=priced.lines,
            LineAmountTypes=merged.get("LineAmountTypes") or "Exclusive",
            SubTotal=priced.sub_total,
            TotalTax=priced.total_tax,
            Total=priced.total,
            TotalDiscount=priced.total_discount,
            AmountDue=priced.total - invoice["AmountPaid"],
            IsDiscounted=priced.total_discount > 0,
        )
        for key in ("Reference", "InvoiceNumber"):
            if key in body:
                invoice[key] = body[key]
        if day:
            invoice.update(Date=dates.msdate_of_day(day), DateString=f"{day}T00:00:00")
        if due:
            invoice.update(DueDate=dates.msdate_of_day(due), DueDateString=f"{due}T00:00:00")
        return self._touched(invoice)

    def _touched(self, invoice: dict[str, Any]) -> dict[str, Any]:
        self._stamp(invoice)
        self._event("INVOICE", "UPDATE", invoice["InvoiceID"])
        return invoice

    def save_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValidationFailed({}, ["A payment must be an object"])
        errors: list[str] = []
        ref: dict[str, Any] = body["Invoice"] if isinstance(body.get("Invoice"), dict) else {}
        invoice = None
        if ref.get("InvoiceID"):
            invoice = self.invoices.get(str(ref["InvoiceID"]).lower())
        elif ref.get("InvoiceNumber"):
            invoice = next((i for i in self.invoices.values() if i["InvoiceNumber"] == ref["InvoiceNumber"]), None)
        if invoice is None:
            raise ValidationFailed(body, ["Invoice could not be found"])
        account = self.account_by(body.get("Account"))
        if account is None:
            errors.append("Account could not be found")
        elif account["Type"] != "BANK" and not account.get("EnablePaymentsToAccount"):
            errors.append("Payments can only be made to or from bank accounts or accounts with payments enabled")
        amount = totals.number(body.get("Amount"))
        if amount is None or amount <= 0:
            errors.append("Payment amount must be greater than zero")
        elif invoice["Status"] != "AUTHORISED":
            errors.append(f"Payment cannot be created on an invoice with status {invoice['Status']}")
        elif totals.cents(amount) > invoice["AmountDue"]:
            errors.append("Payment amount exceeds the amount outstanding on this document")
        day = self._day(body.get("Date"), self.today(), "Date", errors)
        if errors:
            raise ValidationFailed(body, errors)
        assert amount is not None and account is not None and day is not None
        amount = totals.cents(amount)
        payment = {
            "PaymentID": new_id(),
            "Date": dates.msdate_of_day(day),
            "Amount": amount,
            "BankAmount": amount,
            "CurrencyRate": Decimal(1),
            "Reference": body.get("Reference", ""),
            "IsReconciled": False,
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "HasAccount": True,
            "HasValidationErrors": False,
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "Invoice": {
                "InvoiceID": invoice["InvoiceID"],
                "InvoiceNumber": invoice["InvoiceNumber"],
                "Type": invoice["Type"],
                "Contact": invoice["Contact"],
            },
        }
        self._stamp(payment)
        self.payments[payment["PaymentID"]] = payment
        invoice["AmountPaid"] += amount
        invoice["AmountDue"] -= amount
        invoice["Payments"].append(
            {
                "PaymentID": payment["PaymentID"],
                "Date": payment["Date"],
                "Amount": amount,
                "Reference": payment["Reference"],
            }
        )
        if invoice["AmountDue"] == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = payment["Date"]
        self._touched(invoice)
        return payment

    def delete_payment(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(str(payment_id).lower())
        if payment is None:
            raise NotFound(payment_id)
        if not isinstance(body, dict) or body.get("Status") != "DELETED":
            raise ValidationFailed(body if isinstance(body, dict) else {}, ["Status must be DELETED"])
        if payment["Status"] == "DELETED":
            raise ValidationFailed(body, ["This payment has already been deleted"])
        payment["Status"] = "DELETED"
        self._stamp(payment)
        invoice = self.invoice(payment["Invoice"]["InvoiceID"])
        invoice["AmountPaid"] -= payment["Amount"]
        invoice["AmountDue"] += payment["Amount"]
        invoice["Payments"] = [p for p in invoice["Payments"] if p["PaymentID"] != payment["PaymentID"]]
        if invoice["Status"] == "PAID":
            invoice["Status"] = "AUTHORISED"
            invoice.pop("FullyPaidOnDate", None)
        self._touched(invoice)
        return payment

    def save_bank_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValidationFailed({}, ["A bank transaction must be an object"])
        errors: list[str] = []
        kind = body.get("Type")
        if kind not in ("RECEIVE", "SPEND"):
            errors.append("Type must be RECEIVE or SPEND")
        contact = self._contact_ref(body.get("Contact"), errors)
        account = self.account_by(body.get("BankAccount"))
        if account is None or account["Type"] != "BANK":
            errors.append("BankAccount must be an active bank account")
        priced = self._lines(body, body.get("LineItems"), errors, need_account=True)
        if not priced.lines and not errors:
            errors.append("At least one line item is required")
        currency = self._currency(body, errors)
        day = self._day(body.get("Date"), self.today(), "Date", errors)
        if errors:
            raise ValidationFailed(body, errors)
        assert contact is not None and account is not None and day is not None
        transaction = {
            "BankTransactionID": new_id(),
            "Type": kind,
            "Contact": self._contact_summary(contact),
            "BankAccount": {"AccountID": account["AccountID"], "Code": account["Code"], "Name": account["Name"]},
            "LineItems": priced.lines,
            "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive",
            "SubTotal": priced.sub_total,
            "TotalTax": priced.total_tax,
            "Total": priced.total,
            "Date": dates.msdate_of_day(day),
            "DateString": f"{day}T00:00:00",
            "Reference": body.get("Reference", ""),
            "CurrencyCode": currency,
            "Status": "AUTHORISED",
            "IsReconciled": False,
            "HasAttachments": False,
        }
        self._stamp(transaction)
        self.bank_transactions[transaction["BankTransactionID"]] = transaction
        return transaction

    def save_tax_rate(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValidationFailed({}, ["A tax rate must be an object"])
        name = body.get("Name")
        components = body.get("TaxComponents")
        errors = []
        if not isinstance(name, str) or not name.strip():
            errors.append("Name is required")
        elif any(r["Name"].lower() == name.lower() for r in self.tax_rates.values()):
            errors.append(f"A tax rate named {name} already exists")
        rates = [totals.number(c.get("Rate")) for c in components or [] if isinstance(c, dict)]
        if not rates or any(r is None or r < 0 for r in rates):
            errors.append("TaxComponents must have at least one component with a Rate")
        if errors:
            raise ValidationFailed(body, errors)
        effective = sum((r for r in rates if r is not None), ZERO)
        tax_type = f"TAX{len(self.tax_rates) + 1:03d}"
        rate = {
            "Name": name,
            "TaxType": tax_type,
            "ReportTaxType": body.get("ReportTaxType") or "OUTPUT",
            "Status": "ACTIVE",
            "TaxComponents": [{**c, "Rate": totals.number(c.get("Rate"))} for c in components or []],
            "DisplayTaxRate": effective,
            "EffectiveRate": effective,
            "CanApplyToAssets": True,
            "CanApplyToEquity": True,
            "CanApplyToExpenses": True,
            "CanApplyToLiabilities": True,
            "CanApplyToRevenue": True,
        }
        self.tax_rates[tax_type] = rate
        return rate

    def save_item(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("Code"):
            raise ValidationFailed(body if isinstance(body, dict) else {}, ["Item code is required"])
        existing = next((i for i in self.items.values() if i["Code"] == body["Code"]), None)
        if existing is not None:
            existing.update({k: v for k, v in body.items() if k != "ItemID"})
            self._stamp(existing)
            return existing
        item = {"ItemID": new_id(), "IsSold": True, "IsPurchased": False, "IsTrackedAsInventory": False, **body}
        self._stamp(item)
        self.items[item["ItemID"]] = item
        return item

    # persistence

    def dump(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "name": self.name,
            "currency": self.currency,
            "country": self.country,
            "contacts": self.contacts,
            "invoices": self.invoices,
            "payments": self.payments,
            "bank_transactions": self.bank_transactions,
            "accounts": self.accounts,
            "tax_rates": self.tax_rates,
            "items": self.items,
        }

    @classmethod
    def load(cls, data: dict[str, Any], clock: Callable[[], float]) -> Organisation:
        return cls(clock=clock, **copy.deepcopy(data))


def render(document: dict[str, Any]) -> dict[str, Any]:
    """The API's view: private keys dropped, UpdatedDateUTC as Xero's /Date()/, money as JSON numbers."""
    out = {k: _render_value(v) for k, v in document.items() if not k.startswith("_")}
    if "_updated" in document:
        out["UpdatedDateUTC"] = dates.msdate(document["_updated"])
    return out


def _render_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return render(value)
    if isinstance(value, list):
        return [_render_value(v) for v in value]
    return value
