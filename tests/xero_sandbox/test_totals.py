"""Xero's line arithmetic as the sandbox computes it: exclusive, inclusive, no tax, discounts, overrides."""

from __future__ import annotations

from decimal import Decimal

from ledgerbridge_xero.sandbox.totals import price

RATES = {"NONE": Decimal("0"), "OUTPUT2": Decimal("20"), "RROUTPUT": Decimal("5")}


def test_inclusive_lines_take_the_tax_out_of_the_amount() -> None:
    errors: list[str] = []
    priced = price([{"Quantity": 1, "UnitAmount": "120.00", "TaxType": "OUTPUT2"}], "Inclusive", RATES, errors)
    assert errors == []
    assert (priced.sub_total, priced.total_tax, priced.total) == (
        Decimal("100.00"),
        Decimal("20.00"),
        Decimal("120.00"),
    )


def test_no_tax_lines_ignore_the_tax_type() -> None:
    priced = price([{"Quantity": 3, "UnitAmount": "9.99"}], "NoTax", RATES, [])
    assert (priced.total_tax, priced.total) == (Decimal("0"), Decimal("29.97"))


def test_tax_is_rounded_per_line_and_overrides_only_within_rounding() -> None:
    lines = [{"Quantity": 1, "UnitAmount": "0.05", "TaxType": "RROUTPUT"} for _ in range(3)]
    priced = price(lines, "Exclusive", RATES, [])
    assert priced.total_tax == Decimal("0.00")  # 0.0025 rounds to 0 on each line, not 0.01 overall
    errors: list[str] = []
    price([{"Quantity": 1, "UnitAmount": "10", "TaxType": "OUTPUT2", "TaxAmount": "2.01"}], "Exclusive", RATES, errors)
    assert errors == []
    price([{"Quantity": 1, "UnitAmount": "10", "TaxType": "OUTPUT2", "TaxAmount": "2.50"}], "Exclusive", RATES, errors)
    assert errors and "differs from the calculated tax" in errors[0]


def test_discounts_and_a_line_amount_that_does_not_match() -> None:
    errors: list[str] = []
    priced = price(
        [{"Quantity": 2, "UnitAmount": "10", "DiscountRate": "12.5", "TaxType": "NONE"}], "Exclusive", RATES, errors
    )
    assert priced.lines[0]["LineAmount"] == Decimal("17.50") and priced.total_discount == Decimal("2.50")
    price([{"Quantity": 1, "UnitAmount": "10", "DiscountAmount": "11"}], "Exclusive", RATES, errors)
    price([{"Quantity": 1, "UnitAmount": "10", "LineAmount": "9"}], "Exclusive", RATES, errors)
    assert len(errors) == 2
