"""Entity rules of one company: create, read, full/sparse update, delete, void, and their side effects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import errors, state, totals
from .clock import Clock, iso
from .state import Company
from .totals import dec, money, num

ENTITIES = (
    "Customer", "Invoice", "SalesReceipt", "RefundReceipt", "Payment", "Item", "Account",
    "TaxCode", "TaxRate", "PaymentMethod", "CompanyInfo",
)  # fmt: skip
URL_NAMES = {name.lower(): name for name in ENTITIES}
SALES_FORMS = ("Invoice", "SalesReceipt", "RefundReceipt")
NAME_LISTS = ("Customer", "Item", "Account", "PaymentMethod")
READ_ONLY = ("TaxCode", "TaxRate")
VOIDABLE = ("Invoice", "SalesReceipt", "Payment", "RefundReceipt")
SYSTEM_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")
# Read-only members clients echo back (python-quickbooks sends them all): recomputed, never taken from input.
COMPUTED = {
    "Customer": ("Balance", "BalanceWithJobs", "FullyQualifiedName", "Level"),
    "Invoice": ("Balance", "TotalAmt", "HomeBalance", "HomeTotalAmt", "LinkedTxn", "Deposit"),
    "SalesReceipt": ("Balance", "TotalAmt", "HomeBalance", "HomeTotalAmt", "LinkedTxn"),
    "RefundReceipt": ("Balance", "TotalAmt", "HomeBalance", "HomeTotalAmt", "LinkedTxn"),
    "Payment": ("UnappliedAmt", "LinkedTxn"),
    "Item": ("FullyQualifiedName", "Level"),
    "Account": ("FullyQualifiedName", "CurrentBalance", "CurrentBalanceWithSubAccounts", "Classification"),
}
Notify = Callable[[Company, str, str, str], None]


def clean(value: Any) -> Any:
    """Drop what python-quickbooks sends for 'unset': "", None, empty Refs and lists, LineEx noise."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "LineEx":
                continue
            item = clean(item)
            if item is None or item == "" or item == {} or item == []:
                continue
            out[key] = item
        if set(out) <= {"name", "type"} and ("name" in value and "value" in value):
            return None  # a Ref whose value was empty
        return out
    if isinstance(value, list):
        cleaned = (clean(item) for item in value)
        return [item for item in cleaned if item not in (None, "", {})]
    return value


def ref_value(ref: Any) -> str | None:
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


class Books:
    """All entity operations for one company. `notify` receives every change (CDC log and webhooks)."""

    def __init__(self, company: Company, clock: Clock, notify: Notify) -> None:
        self.company = company
        self.clock = clock
        self.notify = notify

    # -- helpers -----------------------------------------------------------------------------------------
    def _now(self) -> str:
        return iso(self.clock.now())

    def _table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.company.table(entity)

    def get(self, entity: str, entity_id: str) -> dict[str, Any]:
        found = self._table(entity).get(str(entity_id))
        if found is None:
            raise errors.not_found(entity, str(entity_id))
        return found

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.get(entity, entity_id))

    def _check_ref(self, entity: str, ref: Any, element: str, *, active: bool = True) -> dict[str, Any]:
        value = ref_value(ref)
        if value is None:
            raise errors.required(element)
        found = self._table(entity).get(value)
        if found is None or (active and found.get("Active") is False):
            raise errors.invalid_reference(element, value)
        return found

    def _current(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        entity_id = body.get("Id")
        if entity_id in (None, ""):
            raise errors.required("Id")
        current = self.get(entity, str(entity_id))
        token = body.get("SyncToken")
        if token in (None, ""):
            raise errors.required("SyncToken")
        if str(token).strip() != current["SyncToken"]:
            raise errors.stale(entity, str(entity_id))
        return current

    def _stamp(self, obj: dict[str, Any], created: dict[str, Any] | None) -> None:
        now = self._now()
        obj["domain"] = "QBO"
        obj["sparse"] = False
        if created is None:
            obj["SyncToken"] = "0"
            obj["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        else:
            obj["SyncToken"] = str(int(created["SyncToken"]) + 1)
            obj["MetaData"] = {"CreateTime": created["MetaData"]["CreateTime"], "LastUpdatedTime": now}

    def _input(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        data = clean(body) or {}
        for key in (*SYSTEM_FIELDS, *COMPUTED.get(entity, ())):
            data.pop(key, None)
        return data

    # -- public operations -------------------------------------------------------------------------------
    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity in READ_ONLY or entity == "CompanyInfo":
            raise errors.unsupported("Create", entity)
        obj = self._input(entity, body)
        self._validate(entity, obj, None)
        obj = {"Id": self.company.next_id(entity), **obj}
        self._stamp(obj, None)
        self._table(entity)[obj["Id"]] = obj
        self.notify(self.company, entity, obj["Id"], "Create")
        self._after_write(entity, obj, None)
        return copy.deepcopy(obj)

    def update(self, entity: str, body: dict[str, Any], *, sparse: bool) -> dict[str, Any]:
        if entity in READ_ONLY:
            raise errors.unsupported("Update", entity)
        current = self._current(entity, body)
        incoming = self._input(entity, body)
        if entity == "CompanyInfo":
            sparse = True  # CompanyInfo only ever takes the fields sent
        if sparse:
            obj = {k: v for k, v in current.items() if k not in SYSTEM_FIELDS}
            obj.update(incoming)
        else:
            # A full update sets omitted writable fields to NULL: start from the input alone.
            obj = incoming
        for key in COMPUTED.get(entity, ()):
            obj.pop(key, None)
        before = copy.deepcopy(current)
        self._validate(entity, obj, current)
        obj = {"Id": current["Id"], **obj}
        self._stamp(obj, current)
        self._table(entity)[obj["Id"]] = obj
        deactivated = entity in NAME_LISTS and before.get("Active", True) and obj.get("Active") is False
        self.notify(self.company, entity, obj["Id"], "Delete" if deactivated else "Update")
        self._after_write(entity, obj, before)
        return copy.deepcopy(obj)

    def delete(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity in READ_ONLY or entity == "CompanyInfo":
            raise errors.unsupported("Delete", entity)
        current = self._current(entity, body)
        if entity in NAME_LISTS:
            # Name-list entities cannot be removed in QBO; "delete" makes them inactive.
            return self.update(entity, {"Id": current["Id"], "SyncToken": current["SyncToken"], "Active": False},
                               sparse=True)  # fmt: skip
        del self._table(entity)[current["Id"]]
        now = self._now()
        self.company.tombstones.setdefault(entity, {})[current["Id"]] = {
            "Id": current["Id"], "status": "Deleted", "domain": "QBO",
            "MetaData": {"LastUpdatedTime": now},
        }  # fmt: skip
        self.notify(self.company, entity, current["Id"], "Delete")
        if entity == "Invoice":
            self._unlink_payments(current["Id"])
        self._after_write(entity, None, current)
        return {"status": "Deleted", "domain": "QBO", "Id": current["Id"]}

    def void(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity not in VOIDABLE:
            raise errors.unsupported("Void", entity)
        current = self._current(entity, body)
        before = copy.deepcopy(current)
        obj = copy.deepcopy(current)
        for line in obj.get("Line", []):
            line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if detail:
                detail["Qty"] = 0
        obj["TotalAmt"] = 0
        if "TxnTaxDetail" in obj:
            obj["TxnTaxDetail"]["TotalTax"] = 0
            for tax_line in obj["TxnTaxDetail"].get("TaxLine", []):
                tax_line["Amount"] = 0
        if entity == "Payment":
            obj["UnappliedAmt"] = 0
        else:
            obj["Balance"] = 0
        note = obj.get("PrivateNote")
        obj["PrivateNote"] = f"Voided - {note}" if note else "Voided"
        if entity == "Invoice":
            obj["LinkedTxn"] = []
        self._stamp(obj, current)
        self._table(entity)[obj["Id"]] = obj
        self.company.voided.add(f"{entity}:{obj['Id']}")
        self.notify(self.company, entity, obj["Id"], "Void")
        if entity == "Invoice":
            self._unlink_payments(obj["Id"])
        self._after_write(entity, obj, before)
        return copy.deepcopy(obj)

    def is_voided(self, entity: str, entity_id: str) -> bool:
        return f"{entity}:{entity_id}" in self.company.voided

    # -- validation per entity ---------------------------------------------------------------------------
    def _validate(self, entity: str, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        if entity == "Customer":
            self._customer(obj, current)
        elif entity in SALES_FORMS:
            if current is not None and self.is_voided(entity, current["Id"]):
                raise errors.validation("A voided transaction cannot be changed")
            self._sales_form(entity, obj, current)
        elif entity == "Payment":
            if current is not None and self.is_voided(entity, current["Id"]):
                raise errors.validation("A voided transaction cannot be changed")
            self._payment(obj, current)
        elif entity == "Item":
            self._named(entity, obj, current, "Name")
            obj.setdefault("Type", "Service")
            obj.setdefault("Active", True)
            obj.setdefault("Taxable", True)
            obj["FullyQualifiedName"] = obj["Name"]
            if obj["Type"] in ("Service", "NonInventory", "Inventory"):
                account = self._check_ref("Account", obj.get("IncomeAccountRef"), "IncomeAccountRef")
                obj["IncomeAccountRef"] = {"value": account["Id"], "name": account["Name"]}
        elif entity == "Account":
            self._named(entity, obj, current, "Name")
            if not obj.get("AccountType"):
                raise errors.required("AccountType")
            obj.setdefault("Active", True)
            obj["FullyQualifiedName"] = obj["Name"]
            obj["CurrentBalance"] = current.get("CurrentBalance", 0) if current else 0
            obj.setdefault("CurrencyRef", {"value": self.company.currency})
        elif entity == "PaymentMethod":
            self._named(entity, obj, current, "Name")
            obj.setdefault("Active", True)
            obj.setdefault("Type", "NON_CREDIT_CARD")
            if obj["Type"] not in ("CREDIT_CARD", "NON_CREDIT_CARD"):
                raise errors.validation("Type must be CREDIT_CARD or NON_CREDIT_CARD", "Type")
        elif entity == "CompanyInfo":
            obj["Country"] = self.company.country  # the country is fixed at company creation
            if obj.get("CompanyName"):
                self.company.name = str(obj["CompanyName"])

    def _named(self, entity: str, obj: dict[str, Any], current: dict[str, Any] | None, key: str) -> None:
        name = str(obj.get(key, "")).strip()
        if not name:
            raise errors.required(key)
        obj[key] = name
        folded = name.casefold()
        for other in self._table(entity).values():
            if other.get(key, "").strip().casefold() == folded and (current is None or other["Id"] != current["Id"]):
                raise errors.duplicate_name(key)

    def _customer(self, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        if not str(obj.get("DisplayName", "")).strip():
            parts = [str(obj[k]) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix") if obj.get(k)]
            derived = " ".join(parts) or str(obj.get("CompanyName", ""))
            if not derived.strip():
                raise errors.required("DisplayName")
            obj["DisplayName"] = derived
        self._named("Customer", obj, current, "DisplayName")
        if obj.get("ParentRef"):
            self._check_ref("Customer", obj["ParentRef"], "ParentRef")
            obj["Job"] = True
        obj.setdefault("Active", True)
        obj.setdefault("Taxable", True)
        obj.setdefault("Job", False)
        obj.setdefault("BillWithParent", False)
        obj.setdefault("PreferredDeliveryMethod", "Print")
        obj.setdefault("PrintOnCheckName", obj["DisplayName"])
        obj.setdefault("CurrencyRef", {"value": self.company.currency})
        obj["FullyQualifiedName"] = obj["DisplayName"]
        obj["Balance"] = current.get("Balance", 0) if current else 0
        obj["BalanceWithJobs"] = obj["Balance"]

    def _doc_number(self, entity: str, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        used = {o.get("DocNumber") for o in self._table(entity).values() if current is None or o["Id"] != current["Id"]}
        doc = obj.get("DocNumber")
        if doc:
            if str(doc) in used:
                raise errors.duplicate_doc_number(str(doc))
            obj["DocNumber"] = str(doc)
            return
        number = self.company.doc_numbers.get(entity, 1000)
        while True:
            number += 1
            if str(number) not in used:
                break
        self.company.doc_numbers[entity] = number
        obj["DocNumber"] = str(number)

    def _sales_form(self, entity: str, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        if entity == "Invoice" or obj.get("CustomerRef"):
            customer = self._check_ref("Customer", obj.get("CustomerRef"), "CustomerRef")
            obj["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        lines = obj.get("Line")
        if not lines:
            raise errors.required("Line")
        for line in lines:
            self._line_refs(line)
            for sub in (line.get("GroupLineDetail") or {}).get("Line") or []:
                self._line_refs(sub)
        override_raw = (obj.get("TxnTaxDetail") or {}).get("TotalTax")
        result = totals.compute(
            lines,
            self.company.tax_setup(),
            apply_tax_after_discount=bool(obj.get("ApplyTaxAfterDiscount", False)),
            tax_override=dec(override_raw, "TotalTax") if self.company.us else None,
        )
        obj["Line"] = result.lines
        obj["TxnTaxDetail"] = result.tax_detail
        obj["TotalAmt"] = num(result.total)
        obj.setdefault("ApplyTaxAfterDiscount", False)
        obj.setdefault("CurrencyRef", {"value": self.company.currency})
        obj.setdefault("TxnDate", self.clock.now().date().isoformat())
        obj.setdefault("PrintStatus", "NotSet")
        obj.setdefault("EmailStatus", "NotSet")
        obj.setdefault("PrivateNote", "")
        if not obj["PrivateNote"]:
            del obj["PrivateNote"]
        self._doc_number(entity, obj, current)
        if entity == "Invoice":
            obj.setdefault("DueDate", obj["TxnDate"])
            obj["Deposit"] = 0
            applied = self._applied_to(current["Id"]) if current else Decimal(0)
            if applied > result.total:
                raise errors.validation("The invoice total is less than the payments applied to it", "Line")
            obj["Balance"] = num(money(result.total - applied))
            obj["LinkedTxn"] = self._payment_links(current["Id"]) if current else []
        else:
            obj["Balance"] = 0
            default_account = state.UNDEPOSITED_FUNDS if entity == "SalesReceipt" else state.CHECKING
            account = self._check_ref("Account", obj.get("DepositToAccountRef") or {"value": default_account},
                                      "DepositToAccountRef")  # fmt: skip
            obj["DepositToAccountRef"] = {"value": account["Id"], "name": account["Name"]}
            if obj.get("PaymentMethodRef"):
                self._check_ref("PaymentMethod", obj["PaymentMethodRef"], "PaymentMethodRef")

    def _line_refs(self, line: dict[str, Any]) -> None:
        detail = line.get("SalesItemLineDetail")
        if line.get("DetailType") == "SalesItemLineDetail":
            detail = line.setdefault("SalesItemLineDetail", {})
            # QBO fills in the default "Services" item when a line names none.
            item = self._check_ref("Item", detail.get("ItemRef") or {"value": state.SERVICES_ITEM}, "ItemRef")
            detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
        discount = line.get("DiscountLineDetail")
        if line.get("DetailType") == "DiscountLineDetail":
            discount = line.setdefault("DiscountLineDetail", {})
            account = self._check_ref("Account", discount.get("DiscountAccountRef")
                                      or {"value": state.DISCOUNTS_GIVEN}, "DiscountAccountRef")  # fmt: skip
            discount["DiscountAccountRef"] = {"value": account["Id"], "name": account["Name"]}

    # -- payments ----------------------------------------------------------------------------------------
    def _applications(self, payment: dict[str, Any]) -> list[tuple[str, Decimal]]:
        out: list[tuple[str, Decimal]] = []
        for line in payment.get("Line", []):
            amount = dec(line.get("Amount"), "Amount") or Decimal(0)
            for link in line.get("LinkedTxn", []):
                if link.get("TxnType") == "Invoice" and amount:
                    out.append((str(link.get("TxnId")), amount))
        return out

    def _applied_to(self, invoice_id: str, skip_payment: str | None = None) -> Decimal:
        total = Decimal(0)
        for payment in self._table("Payment").values():
            if payment["Id"] == skip_payment:
                continue
            total += sum((a for i, a in self._applications(payment) if i == invoice_id), Decimal(0))
        return total

    def _payment_links(self, invoice_id: str) -> list[dict[str, Any]]:
        return [
            {"TxnId": p["Id"], "TxnType": "Payment"}
            for p in self._table("Payment").values()
            if any(i == invoice_id for i, _ in self._applications(p))
        ]

    def _payment(self, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        customer = self._check_ref("Customer", obj.get("CustomerRef"), "CustomerRef")
        obj["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        total = dec(obj.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise errors.required("TotalAmt")
        total = money(total)
        applied_sum = Decimal(0)
        per_invoice: dict[str, Decimal] = {}
        lines = []
        for line in obj.get("Line", []):
            amount = money(dec(line.get("Amount"), "Amount") or Decimal(0))
            links = []
            for link in line.get("LinkedTxn", []):
                if link.get("TxnType") != "Invoice":
                    raise errors.validation("A payment line can only be linked to an Invoice", "LinkedTxn")
                invoice = self._table("Invoice").get(str(link.get("TxnId")))
                if invoice is None:
                    raise errors.invalid_reference("LinkedTxn.TxnId", link.get("TxnId"))
                if ref_value(invoice.get("CustomerRef")) != customer["Id"]:
                    raise errors.validation("The invoice belongs to another customer", "LinkedTxn")
                links.append({"TxnId": invoice["Id"], "TxnType": "Invoice"})
                per_invoice[invoice["Id"]] = per_invoice.get(invoice["Id"], Decimal(0)) + amount
            applied_sum += amount
            lines.append({**line, "Amount": num(amount), "LinkedTxn": links})
        for invoice_id, amount in per_invoice.items():
            invoice = self._table("Invoice")[invoice_id]
            open_balance = money(Decimal(str(invoice["TotalAmt"])) - self._applied_to(
                invoice_id, current["Id"] if current else None))  # fmt: skip
            if amount > open_balance:
                raise errors.validation(
                    f"The amount applied to invoice {invoice_id} exceeds its open balance {open_balance}", "Line"
                )
        if applied_sum > total:
            raise errors.validation("The amounts applied exceed the payment total", "TotalAmt")
        obj["Line"] = lines
        obj["TotalAmt"] = num(total)
        obj["UnappliedAmt"] = num(total - applied_sum)
        obj.setdefault("TxnDate", self.clock.now().date().isoformat())
        obj.setdefault("CurrencyRef", {"value": self.company.currency})
        obj.setdefault("ProcessPayment", False)
        account = self._check_ref("Account", obj.get("DepositToAccountRef") or {"value": state.UNDEPOSITED_FUNDS},
                                  "DepositToAccountRef")  # fmt: skip
        obj["DepositToAccountRef"] = {"value": account["Id"], "name": account["Name"]}
        if obj.get("PaymentMethodRef"):
            self._check_ref("PaymentMethod", obj["PaymentMethodRef"], "PaymentMethodRef")

    def _unlink_payments(self, invoice_id: str) -> None:
        """Voiding or deleting an invoice leaves the payments applied to it unapplied."""
        for payment in list(self._table("Payment").values()):
            if not any(i == invoice_id for i, _ in self._applications(payment)):
                continue
            kept = []
            for line in payment.get("Line", []):
                if any(str(link.get("TxnId")) == invoice_id for link in line.get("LinkedTxn", [])):
                    continue
                kept.append(line)
            applied = sum((Decimal(str(line.get("Amount", 0))) for line in kept), Decimal(0))
            payment["Line"] = kept
            payment["UnappliedAmt"] = num(money(Decimal(str(payment["TotalAmt"])) - applied))
            self._stamp(payment, dict(payment))
            self.notify(self.company, "Payment", payment["Id"], "Update")

    # -- side effects -------------------------------------------------------------------------------------
    def _after_write(self, entity: str, obj: dict[str, Any] | None, before: dict[str, Any] | None) -> None:
        customers: set[str] = set()
        for version in (obj, before):
            if version is not None and ref_value(version.get("CustomerRef")):
                customers.add(str(ref_value(version.get("CustomerRef"))))
        if entity == "Payment":
            invoices = {i for v in (obj, before) if v is not None for i, _ in self._applications(v)}
            for invoice_id in sorted(invoices):
                self._refresh_invoice(invoice_id)
        if entity in ("Invoice", "Payment"):
            for customer_id in customers:
                self._refresh_customer(customer_id)

    def _refresh_invoice(self, invoice_id: str) -> None:
        """A payment changes the invoice's Balance and LinkedTxn, and so bumps its SyncToken."""
        invoice = self._table("Invoice").get(invoice_id)
        if invoice is None:
            return
        if self.is_voided("Invoice", invoice_id):
            balance = 0.0
        else:
            balance = num(money(Decimal(str(invoice["TotalAmt"])) - self._applied_to(invoice_id)))
        links = self._payment_links(invoice_id)
        if balance == invoice.get("Balance") and links == invoice.get("LinkedTxn"):
            return
        invoice["Balance"] = balance
        invoice["LinkedTxn"] = links
        self._stamp(invoice, dict(invoice))
        self.notify(self.company, "Invoice", invoice_id, "Update")

    def _refresh_customer(self, customer_id: str) -> None:
        """Customer.Balance = open invoices minus unapplied payments; it does not bump SyncToken."""
        customer = self._table("Customer").get(customer_id)
        if customer is None:
            return
        balance = Decimal(0)
        for invoice in self._table("Invoice").values():
            if ref_value(invoice.get("CustomerRef")) == customer_id:
                balance += Decimal(str(invoice.get("Balance", 0)))
        for payment in self._table("Payment").values():
            if ref_value(payment.get("CustomerRef")) == customer_id:
                balance -= Decimal(str(payment.get("UnappliedAmt", 0)))
        customer["Balance"] = num(money(balance))
        customer["BalanceWithJobs"] = customer["Balance"]
