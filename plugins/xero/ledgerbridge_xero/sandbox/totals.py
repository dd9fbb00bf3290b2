"""Xero's arithmetic for invoice and bank-transaction lines, written from Xero's documentation alone.

LineAmount = Quantity × UnitAmount less the line's discount (DiscountRate % or DiscountAmount), rounded to
the cent. Tax is rounded per line: Exclusive adds rate % of the LineAmount, Inclusive takes rate/(100+rate)
out of it, NoTax has none. A TaxAmount sent on a line overrides the computed one (Xero's rounding override),
but only within a cent per unit of quantity, as Xero refuses larger corrections.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")
LINE_AMOUNT_TYPES = {"Exclusive", "Inclusive", "NoTax"}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Any, default: Decimal | None = None) -> Decimal | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass
class Priced:
    lines: list[dict[str, Any]]
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    total_discount: Decimal


def price(
    lines: list[dict[str, Any]], line_amount_types: str, rate_of: dict[str, Decimal], errors: list[str]
) -> Priced:
    """`rate_of` maps each usable TaxType to its effective rate; problems are appended to `errors`."""
    out: list[dict[str, Any]] = []
    sub_total = total_tax = total_discount = ZERO
    for raw in lines:
        line = dict(raw)
        quantity = number(line.get("Quantity"), Decimal(1))
        unit = number(line.get("UnitAmount"), ZERO)
        if quantity is None or unit is None:
            errors.append("Quantity and UnitAmount must be numbers")
            continue
        gross = quantity * unit
        discount = ZERO
        rate = number(line.get("DiscountRate"))
        amount_off = number(line.get("DiscountAmount"))
        if rate is not None and rate != 0:
            if not ZERO <= rate <= 100:
                errors.append("Discount rate must be between 0 and 100")
            discount = cents(gross * rate / 100)
        elif amount_off is not None and amount_off != 0:
            discount = cents(amount_off)
            if discount < 0 or discount > cents(abs(gross)):
                errors.append("The discount amount cannot exceed the line amount")
        line_amount = cents(gross - discount)
        sent_amount = number(line.get("LineAmount"))
        if sent_amount is not None and "UnitAmount" in raw and cents(sent_amount) != line_amount:
            errors.append(f"The line total {cents(sent_amount)} does not match the expected line total {line_amount}")
        tax_type = line.get("TaxType") or ("NONE" if line_amount_types == "NoTax" else None)
        tax_rate = ZERO
        if line_amount_types != "NoTax":
            if tax_type is None:
                tax_type = "NONE"
            if tax_type not in rate_of:
                errors.append(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used with this type of transaction."
                )
                continue
            tax_rate = rate_of[tax_type]
        if line_amount_types == "Exclusive":
            tax = cents(line_amount * tax_rate / 100)
        elif line_amount_types == "Inclusive":
            tax = cents(line_amount * tax_rate / (100 + tax_rate))
        else:
            tax = ZERO
        override = number(line.get("TaxAmount"))
        if override is not None and line_amount_types != "NoTax" and cents(override) != tax:
            if abs(cents(override) - tax) > CENT * max(Decimal(1), abs(quantity)):
                errors.append(
                    f"The tax amount {cents(override)} differs from the calculated tax {tax} by more than rounding"
                )
            tax = cents(override)
        line.update(Quantity=quantity, UnitAmount=unit, LineAmount=line_amount, TaxAmount=tax, TaxType=tax_type)
        if discount and rate is None:
            line["DiscountAmount"] = discount
        net = line_amount - tax if line_amount_types == "Inclusive" else line_amount
        sub_total += net
        total_tax += tax
        total_discount += discount
        out.append(line)
    return Priced(out, sub_total, total_tax, sub_total + total_tax, total_discount)
