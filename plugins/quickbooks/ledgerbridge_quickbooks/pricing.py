"""CRM lines, discount and tax → QuickBooks lines whose TotalAmt equals the CRM total to the cent.

US companies: tax and discount are folded into the item prices, as HighLevel's own integration does (US
automated sales tax would otherwise recompute tax): every line is NON-taxable and the line amounts are the
CRM total split in proportion to the CRM line amounts. Other countries: each line carries the tax code whose
rate matches the CRM tax, the discount is a discount line, and tax is applied before or after the discount,
whichever reproduces the CRM total; when no code matches or neither reproduces it, the lines are folded onto
the zero-rate code instead, so the total is still exact (the activity log says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from ledgerbridge import LineItem, PermanentFailure

from . import wire
from .company import US_NON_TAXABLE, CompanySetup

CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.0000001")  # QBO keeps up to 7 decimal places on UnitPrice
DEFAULT_ITEM = "Services"
MAX_ITEM_NAME = 100


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def item_name(name: str) -> str:
    """QBO names cannot contain a colon (it separates sub-items) and are at most 100 characters."""
    cleaned = " ".join(name.replace(":", "-").split())[:MAX_ITEM_NAME].strip()
    return cleaned or DEFAULT_ITEM


def item_names(lines: Sequence[LineItem]) -> list[str]:
    return [item_name(line.name) for line in lines] or [DEFAULT_ITEM]


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class Priced:
    lines: list[wire.Line]
    apply_tax_after_discount: bool | None
    folded: bool
    note: str


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` into cents in proportion to `weights` (largest remainder): the parts sum to `total`."""
    if not weights:
        return []
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:
        return [money(total)] + [Decimal(0)] * (len(weights) - 1)
    cents = int(money(total) / CENT)
    raw = [Decimal(cents) * w / weight_sum for w in weights]
    floors = [int(r.to_integral_value(rounding=ROUND_DOWN)) for r in raw]
    left = cents - sum(floors)
    by_remainder = sorted(range(len(raw)), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for index in by_remainder[:left]:
        floors[index] += 1
    return [Decimal(part) * CENT for part in floors]


def _sales_line(
    name: str, ref: wire.Ref, quantity: Decimal, amount: Decimal, tax_code: str | None, description: str | None
) -> wire.Line:
    price = (amount / quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP) if quantity > 0 else amount
    if quantity <= 0 or money(quantity * price) != amount:
        # the amount cannot be written as quantity × price to the cent: one unit at the line amount
        description = f"{quantity} × {name}" + (f" — {description}" if description else "")
        quantity, price = Decimal(1), amount
    detail = wire.SalesItemLineDetail(
        ItemRef=ref, Qty=quantity, UnitPrice=price, TaxCodeRef=wire.Ref(value=tax_code) if tax_code else None
    )
    return wire.Line(DetailType="SalesItemLineDetail", Amount=amount, Description=description or name,
                     SalesItemLineDetail=detail)  # fmt: skip


def _base(lines: Sequence[LineItem], total: Decimal) -> list[tuple[str, Decimal, Decimal, str | None]]:
    """(name, quantity, amount, description) per line; no lines → one default line for the total."""
    if not lines:
        return [(DEFAULT_ITEM, Decimal(1), money(total), None)]
    return [
        (item_name(li.name), li.quantity, money(li.quantity * li.unit_price.amount), li.description) for li in lines
    ]


def fold(
    lines: Sequence[LineItem], totals: Totals, refs: dict[str, wire.Ref], tax_code: str | None, why: str
) -> Priced:
    base = _base(lines, totals.total)
    amounts = allocate(totals.total, [amount for _, _, amount, _ in base])
    out = [
        _sales_line(name, refs[name], quantity, amount, tax_code, description)
        for (name, quantity, _, description), amount in zip(base, amounts, strict=True)
    ]
    note = (
        f"CRM total {totals.total} = subtotal {totals.subtotal} - discount {totals.discount} + tax {totals.tax}; "
        f"tax and discount included in item prices ({why})"
    )
    return Priced(lines=out, apply_tax_after_discount=None, folded=True, note=note)


def price(lines: Sequence[LineItem], totals: Totals, setup: CompanySetup, refs: dict[str, wire.Ref]) -> Priced:
    if setup.us:
        return fold(lines, totals, refs, US_NON_TAXABLE, "US sales tax")
    zero = setup.zero_code
    separate = _separate(lines, totals, setup, refs)
    if separate is not None:
        return separate
    if zero is None:
        raise PermanentFailure("the QuickBooks company has no zero-rate sales tax code to carry the CRM total")
    return fold(lines, totals, refs, zero, "no tax code reproduces the CRM tax")


def _separate(
    lines: Sequence[LineItem], totals: Totals, setup: CompanySetup, refs: dict[str, wire.Ref]
) -> Priced | None:
    base = _base(lines, totals.total) if lines else None
    if base is None:
        return None
    codes: list[str] = []
    for line in lines:
        rate = sum((tax.rate_percent for tax in line.taxes), Decimal(0))
        code = setup.code_for_rate(rate)
        if code is None:
            return None
        codes.append(code)
    subtotal = money(sum((amount for _, _, amount, _ in base), Decimal(0)))
    discount = money(totals.discount)
    for after in (True, False):
        if _expected_total(base, codes, setup, subtotal, discount, after) != money(totals.total):
            continue
        out = [
            _sales_line(name, refs[name], quantity, amount, code, description)
            for (name, quantity, amount, description), code in zip(base, codes, strict=True)
        ]
        if discount:
            out.append(wire.Line(DetailType="DiscountLineDetail", Amount=discount,
                                 DiscountLineDetail=wire.DiscountLineDetail(PercentBased=False)))  # fmt: skip
        return Priced(lines=out, apply_tax_after_discount=after, folded=False, note="")
    return None


def _expected_total(
    base: list[tuple[str, Decimal, Decimal, str | None]],
    codes: list[str],
    setup: CompanySetup,
    subtotal: Decimal,
    discount: Decimal,
    after_discount: bool,
) -> Decimal:
    """QuickBooks' arithmetic: tax per code on the summed net (reduced pro rata by the discount if after)."""
    net_by_code: dict[str, Decimal] = {}
    for (_, _, amount, _), code in zip(base, codes, strict=True):
        net_by_code[code] = net_by_code.get(code, Decimal(0)) + amount
    tax = Decimal(0)
    for code, net in net_by_code.items():
        taxable = money(net - discount * net / subtotal) if after_discount and discount and subtotal else net
        tax += money(taxable * setup.tax_codes[code] / 100)
    return money(subtotal - discount + tax)
