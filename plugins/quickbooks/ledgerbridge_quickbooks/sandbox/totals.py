"""Sales-form arithmetic as QBO does it: line amounts, SubTotal, discount, tax, TotalAmt.

Written from the reference and Intuit's worked samples only (no code shared with the plugin's client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from . import errors

CENT = Decimal("0.01")
SALES = "SalesItemLineDetail"
GROUP = "GroupLineDetail"
DISCOUNT = "DiscountLineDetail"
SUBTOTAL = "SubTotalLineDetail"
DESCRIPTION = "DescriptionOnlyLineDetail"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: Any, element: str) -> Decimal | None:
    """A number from the wire; python-quickbooks sends "" for unset numbers, which means absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.validation(f"{element} must be a number", element)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise errors.validation(f"{element} must be a number", element) from None


def num(value: Decimal) -> float | int:
    """JSON number for a Decimal: whole quantities stay integers, money keeps two places as a float."""
    return float(value)


@dataclass
class TaxSetup:
    """US: pseudo codes TAX/NON and one rate. Other countries: real codes, one rate each, required per line."""

    us: bool
    us_rate_id: str = "1"
    us_rate: Decimal = Decimal("8")
    codes: dict[str, tuple[str, Decimal]] = field(default_factory=dict)


@dataclass
class Totals:
    lines: list[dict[str, Any]]
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    tax_detail: dict[str, Any]


@dataclass
class _Taxable:
    """Net amount per tax code, gathered while walking the lines."""

    by_code: dict[str, Decimal] = field(default_factory=dict)

    def add(self, code: str, amount: Decimal) -> None:
        self.by_code[code] = self.by_code.get(code, Decimal(0)) + amount


def _sales_line(line: dict[str, Any], setup: TaxSetup, taxable: _Taxable) -> Decimal:
    detail = dict(line.get(SALES) or {})
    qty = dec(detail.get("Qty"), "Qty")
    price = dec(detail.get("UnitPrice"), "UnitPrice")
    amount = dec(line.get("Amount"), "Amount")
    # Zero Qty/UnitPrice are python-quickbooks' defaults for "unset": they do not override Amount.
    if qty and price is not None and (price or amount is None):
        amount = money(qty * price)
    if amount is None:
        raise errors.required("Line.Amount")
    amount = money(amount)
    if qty and not price:
        detail["UnitPrice"] = num(amount / qty)
    if qty is None and price:
        detail["Qty"] = num(amount / price)
    elif qty is None and not price:
        detail.pop("Qty", None)
    code_ref = detail.get("TaxCodeRef") or {}
    code = str(code_ref.get("value", "")) if isinstance(code_ref, dict) else ""
    if setup.us:
        # US: a line is taxable only when marked TAX; anything else (or nothing) is NON.
        code = "TAX" if code == "TAX" else "NON"
        detail["TaxCodeRef"] = {"value": code}
    else:
        if not code:
            raise errors.validation(
                "Make sure all your transactions have a GST/VAT rate before you save.", "TaxCodeRef"
            )
        if code not in setup.codes:
            raise errors.invalid_reference("TaxCodeRef", code)
        detail["TaxCodeRef"] = {"value": code}
    taxable.add(code, amount)
    line["Amount"] = num(amount)
    line[SALES] = detail
    return amount


def _group_line(line: dict[str, Any], setup: TaxSetup, taxable: _Taxable) -> Decimal:
    detail = dict(line.get(GROUP) or {})
    inner: list[dict[str, Any]] = []
    total = Decimal(0)
    for index, sub in enumerate(detail.get("Line") or [], start=1):
        if not isinstance(sub, dict) or sub.get("DetailType") != SALES:
            continue
        sub = dict(sub)
        total += _sales_line(sub, setup, taxable)
        sub["LineNum"] = index
        inner.append(sub)
    detail["Line"] = inner
    line[GROUP] = detail
    line["Amount"] = num(total)
    return total


def compute(
    lines_in: list[dict[str, Any]],
    setup: TaxSetup,
    *,
    apply_tax_after_discount: bool,
    tax_override: Decimal | None,
) -> Totals:
    """Recompute every derived amount of a sales form. SubTotal lines sent by the client are replaced."""
    taxable = _Taxable()
    items: list[dict[str, Any]] = []
    discounts: list[dict[str, Any]] = []
    subtotal = Decimal(0)
    for raw in lines_in:
        if not isinstance(raw, dict):
            raise errors.validation("Line must be an object", "Line")
        line = {k: v for k, v in raw.items() if k not in ("LineEx", "Id", "LineNum")}
        kind = line.get("DetailType")
        if kind == SALES:
            subtotal += _sales_line(line, setup, taxable)
            items.append(line)
        elif kind == GROUP:
            subtotal += _group_line(line, setup, taxable)
            items.append(line)
        elif kind == DESCRIPTION:
            line.pop("Amount", None)
            items.append(line)
        elif kind == DISCOUNT:
            discounts.append(line)
        elif kind == SUBTOTAL:
            continue
        else:
            raise errors.required("Line.DetailType")
    if not any(line.get("DetailType") in (SALES, GROUP) for line in items):
        raise errors.validation("A transaction needs at least one SalesItemLine or GroupLine", "Line")
    subtotal = money(subtotal)
    discount = Decimal(0)
    for line in discounts:
        detail = dict(line.get(DISCOUNT) or {})
        percent = dec(detail.get("DiscountPercent"), "DiscountPercent")
        if detail.get("PercentBased") and percent is not None:
            amount = money(subtotal * percent / 100)
        else:
            given = dec(line.get("Amount"), "Amount")
            if given is None:
                raise errors.required("DiscountLineDetail.Amount")
            amount = money(given)
            detail["PercentBased"] = False
            detail.pop("DiscountPercent", None)
            if subtotal:
                detail["DiscountPercent"] = num(money(amount * 100 / subtotal))
        line["Amount"] = num(amount)
        line[DISCOUNT] = detail
        discount += amount
    if discount > subtotal:
        raise errors.validation("The discount cannot be more than the subtotal", "DiscountLineDetail")
    tax, tax_detail = _tax(setup, taxable, subtotal, discount, apply_tax_after_discount, tax_override)
    out: list[dict[str, Any]] = []
    for line_id, line in enumerate(items, start=1):
        line["Id"] = str(line_id)
        line["LineNum"] = line_id
        out.append(line)
    out.append({"Amount": num(subtotal), "DetailType": SUBTOTAL, SUBTOTAL: {}})
    out.extend(discounts)
    total = money(subtotal - discount + tax)
    return Totals(out, subtotal, discount, tax, total, tax_detail)


def _tax(
    setup: TaxSetup,
    taxable: _Taxable,
    subtotal: Decimal,
    discount: Decimal,
    after_discount: bool,
    override: Decimal | None,
) -> tuple[Decimal, dict[str, Any]]:
    def base_of(net: Decimal) -> Decimal:
        # With ApplyTaxAfterDiscount the discount reduces each taxable base pro rata.
        if after_discount and discount and subtotal:
            return money(net - discount * net / subtotal)
        return net

    tax_lines: list[dict[str, Any]] = []
    total = Decimal(0)
    if setup.us:
        net = base_of(taxable.by_code.get("TAX", Decimal(0)))
        amount = money(net * setup.us_rate / 100)
        if net:
            tax_lines.append(_tax_line(setup.us_rate_id, setup.us_rate, net, amount))
        total = amount
        if override is not None:
            # US automated sales tax: an explicit TotalTax is the only override honoured.
            total = money(override)
            if tax_lines:
                tax_lines[0]["Amount"] = num(total)
        detail: dict[str, Any] = {"TotalTax": num(total)}
        if tax_lines:
            detail["TxnTaxCodeRef"] = {"value": setup.us_rate_id}
            detail["TaxLine"] = tax_lines
        return total, detail
    for code, net_raw in sorted(taxable.by_code.items()):
        rate_id, rate = setup.codes[code]
        net = base_of(net_raw)
        amount = money(net * rate / 100)
        tax_lines.append(_tax_line(rate_id, rate, net, amount))
        total += amount
    return total, {"TotalTax": num(total), "TaxLine": tax_lines}


def _tax_line(rate_id: str, rate: Decimal, net: Decimal, amount: Decimal) -> dict[str, Any]:
    return {
        "Amount": num(amount),
        "DetailType": "TaxLineDetail",
        "TaxLineDetail": {
            "TaxRateRef": {"value": rate_id},
            "PercentBased": True,
            "TaxPercent": num(rate),
            "NetAmountTaxable": num(net),
        },
    }
