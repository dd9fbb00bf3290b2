"""Reading the sandbox pages' forms: plain strings in, action bodies out, one clear message per bad field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerbridge_crmconnect.sandbox.contacts import EMAIL

MONEY = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
MAX_TEXT = 200
MAX_QTY = Decimal(9999)
#: line rows the forms offer (blank rows are ignored)
PAYMENT_LINES = 2
INVOICE_LINES = 3


class FormReader:
    """Collects values and field errors; `errors` maps a field's name to what the user should fix."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.raw = {k: v.strip() if isinstance(v, str) else "" for k, v in form.items()}
        self.errors: dict[str, str] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(self, name: str, label: str, *, required: bool = False) -> str:
        value = self.raw.get(name, "")
        if required and not value:
            self.fail(name, f"Enter {label}.")
        elif len(value) > MAX_TEXT:
            self.fail(name, f"{label.capitalize()} must be at most {MAX_TEXT} characters.")
        return value

    def email(self, name: str) -> str:
        value = self.text(name, "an e-mail address")
        if value and not EMAIL.match(value):
            self.fail(name, "Enter an e-mail address like name@example.com.")
        return value

    def money(self, name: str, label: str, *, required: bool = True) -> Decimal | None:
        value = self.raw.get(name, "").replace(",", "").removeprefix("$")
        if not value:
            if required:
                self.fail(name, f"Enter {label}.")
            return None
        if not MONEY.match(value):
            self.fail(name, f"{label.capitalize()} must be an amount like 120 or 99.50.")
            return None
        return Decimal(value)

    def number(self, name: str, label: str, *, default: str, low: Decimal, high: Decimal) -> Decimal | None:
        value = self.raw.get(name, "") or default
        try:
            result = Decimal(value)
        except InvalidOperation:
            result = Decimal("NaN")
        if not result.is_finite() or not low <= result <= high:
            self.fail(name, f"{label.capitalize()} must be a number from {low} to {high}.")
            return None
        return result

    def choice(self, name: str, label: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
        value = self.raw.get(name, "")
        if value not in options:
            self.fail(name, f"Choose {label}.")
        return value

    def day(self, name: str, label: str) -> str | None:
        value = self.raw.get(name, "")
        if not value:
            return None
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            self.fail(name, f"{label.capitalize()} must be a date like 2026-12-31.")
            return None

    def lines(self, rows: int) -> list[dict[str, Any]]:
        """Rows `line{i}_name|qty|price|tax`; a blank row is skipped, at least one is needed."""
        items: list[dict[str, Any]] = []
        for i in range(rows):
            keys = [f"line{i}_{part}" for part in ("name", "qty", "price", "tax")]
            if not any(self.raw.get(key) for key in (keys[0], keys[2], keys[3])):
                continue
            n = i + 1
            name = self.text(keys[0], f"what line {n} is for", required=True)
            qty = self.number(keys[1], f"the quantity on line {n}", default="1", low=Decimal("0.01"), high=MAX_QTY)
            price = self.money(keys[2], f"the unit price on line {n}")
            tax = self.number(keys[3], f"the tax rate on line {n}", default="0", low=Decimal(0), high=Decimal(100))
            if name and qty is not None and price is not None and tax is not None:
                item: dict[str, Any] = {"name": name, "qty": str(qty), "amount": str(price)}
                if tax:
                    item["taxes"] = [{"name": f"Tax {tax.normalize():f}%", "rate": str(tax)}]
                items.append(item)
        if not items and not any(key.startswith("line") and key in self.errors for key in self.errors):
            self.fail("line0_name", "Add at least one line: what it is for and its unit price.")
        return items

    def discount(self) -> dict[str, Any] | None:
        kind = self.raw.get("discount_type", "")
        value = self.raw.get("discount_value", "")
        if not value:
            return None
        if kind not in ("percentage", "fixed"):
            self.fail("discount_type", "Choose whether the discount is a percentage or a fixed amount.")
            return None
        if kind == "percentage":
            amount = self.number("discount_value", "the discount", default="0", low=Decimal(0), high=Decimal(100))
        else:
            amount = self.money("discount_value", "the discount")
        return None if amount is None else {"type": kind, "value": str(amount)}
