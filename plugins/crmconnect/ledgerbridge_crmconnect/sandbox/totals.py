"""Money arithmetic for invoices and orders: line sums, discount, then exclusive taxes on the discounted base."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ledgerbridge_crmconnect.sandbox.util import cents

ZERO = Decimal("0")


@dataclass
class TaxLine:
    id: str
    name: str
    rate: Decimal
    calculation: str
    amount: Decimal


@dataclass
class Totals:
    sub_total: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    tax_lines: list[TaxLine] = field(default_factory=list)


def compute(items: list[dict[str, Any]], discount: dict[str, Any] | None) -> Totals:
    """Items carry Decimal `qty`, `amount` and `taxes[{_id, name, rate}]`.

    Order (documented choice): subTotal = Σ qty×amount; the discount (percentage of, or a fixed amount capped
    at, the eligible subTotal) is spread over eligible lines pro rata; each exclusive tax applies to its line
    after that line's discount share, rounded half-up to the cent per line and tax; total = subTotal −
    discount + tax.
    """
    lines = [cents(item["qty"] * item["amount"]) for item in items]
    sub_total = sum(lines, ZERO)
    eligible_ids = set((discount or {}).get("validOnProductIds") or [])
    eligible = [bool(not eligible_ids or item.get("productId") in eligible_ids) for item in items]
    base = sum((line for line, ok in zip(lines, eligible, strict=True) if ok), ZERO)
    discount_amount = ZERO
    if discount and discount.get("value"):
        value = Decimal(discount["value"])
        percentage = discount.get("type") == "percentage"
        discount_amount = cents(base * value / 100) if percentage else min(cents(value), base)
    tax_by_id: dict[str, TaxLine] = {}
    for item, line, ok in zip(items, lines, eligible, strict=True):
        share = cents(discount_amount * line / base) if ok and base > 0 else ZERO
        taxable = line - share
        for tax in item.get("taxes") or []:
            amount = cents(taxable * Decimal(tax["rate"]) / 100)
            entry = tax_by_id.setdefault(
                tax["_id"],
                TaxLine(tax["_id"], tax["name"], Decimal(tax["rate"]), tax.get("calculation", "exclusive"), ZERO),
            )
            entry.amount += amount
    tax_total = sum((t.amount for t in tax_by_id.values()), ZERO)
    return Totals(
        sub_total, discount_amount, tax_total, sub_total - discount_amount + tax_total, list(tax_by_id.values())
    )
