"""CRM lines, discount and taxes → Xero line items whose total equals the CRM total to the cent.

Xero has no document-level discount: the CRM discount is spread over the lines (largest remainder, so the
shares add up to the discount exactly) as each line's DiscountAmount. Each line carries the TaxType whose
rate equals the sum of the CRM taxes on it (created when the organisation has none). Xero rounds tax per
line; where the CRM's rounding (tax by tax) differs by a cent, the line's TaxAmount overrides Xero's figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from ledgerbridge import LineItem

from .client import XeroClient
from .organisation import OrganisationSetup, ensure_tax_type

CENT = Decimal("0.01")
ZERO = Decimal("0")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` into cents in proportion to `weights`; the parts add up to `total` exactly."""
    whole = sum(weights, ZERO)
    if not weights or whole == 0 or total == 0:
        return [ZERO for _ in weights]
    raw = [total * w / whole for w in weights]
    parts = [r.quantize(CENT, rounding=ROUND_DOWN) for r in raw]
    leftover = int(((total - sum(parts, ZERO)) / CENT).to_integral_value())
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[:leftover]:
        parts[i] += CENT
    return parts


@dataclass(frozen=True)
class Priced:
    lines: list[dict[str, Any]]
    total: Decimal
    gross: list[Decimal]  # what the customer paid for each line: net after discount, plus tax


def refund_lines(priced: Priced, amount: Decimal, description: str) -> list[dict[str, Any]]:
    """Tax-inclusive lines adding up to `amount`, in proportion to what each line of the sale cost."""
    parts = allocate(amount, priced.gross)
    return [
        {"Description": f"{description}: {line['Description']}"[:4000], "Quantity": 1.0, "UnitAmount": float(part),
         "AccountCode": line["AccountCode"], "TaxType": line["TaxType"]}
        for line, part in zip(priced.lines, parts, strict=True)
        if part
    ]  # fmt: skip


async def price(
    client: XeroClient,
    setup: OrganisationSetup,
    lines: Sequence[LineItem],
    discount: Decimal,
    account_code: str,
    *,
    fallback_total: Decimal,
    fallback_name: str,
) -> Priced:
    if not lines:
        single: dict[str, Any] = {
            "Description": fallback_name,
            "Quantity": 1.0,
            "UnitAmount": float(fallback_total),
            "AccountCode": account_code,
            "TaxType": await ensure_tax_type(client, setup, ZERO, "No tax"),
        }
        return Priced([single], fallback_total, [fallback_total])
    amounts = [cents(line.quantity * line.unit_price.amount) for line in lines]
    shares = allocate(min(discount, sum(amounts, ZERO)), amounts)
    out: list[dict[str, Any]] = []
    gross: list[Decimal] = []
    total = ZERO
    for line, amount, share in zip(lines, amounts, shares, strict=True):
        net = amount - share
        rate = sum((t.rate_percent for t in line.taxes), ZERO)
        label = " + ".join(t.name for t in line.taxes) or "No tax"
        tax_type = await ensure_tax_type(client, setup, rate, label)
        crm_tax = sum((cents(net * t.rate_percent / 100) for t in line.taxes), ZERO)
        xero_tax = cents(net * rate / 100)
        description = line.name if not line.description else f"{line.name} — {line.description}"
        item: dict[str, Any] = {
            "Description": description[:4000],
            "Quantity": float(line.quantity),
            "UnitAmount": float(line.unit_price.amount),
            "AccountCode": account_code,
            "TaxType": tax_type,
        }
        exact = line.unit_price.amount == line.unit_price.amount.quantize(CENT)
        if not exact or line.quantity * line.unit_price.amount != amount:
            # Xero keeps unit prices to the cent and rounds quantity × price itself: send the line as one unit
            item.update(
                Quantity=1.0,
                UnitAmount=float(amount),
                Description=f"{description} ×{line.quantity.normalize():f}"[:4000],
            )
        if share:
            item["DiscountAmount"] = float(share)
        if crm_tax != xero_tax:
            item["TaxAmount"] = float(crm_tax)
        out.append(item)
        gross.append(net + crm_tax)
        total += net + crm_tax
    return Priced(out, total, gross)
