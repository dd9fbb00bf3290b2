"""QBO arithmetic on Intuit's worked samples, straight through the totals module."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ledgerbridge_quickbooks.sandbox import errors
from ledgerbridge_quickbooks.sandbox.totals import TaxSetup, compute

US = TaxSetup(us=True, us_rate=Decimal("8"))


def sales(amount: float | None = None, code: str = "TAX", **detail: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"DetailType": "SalesItemLineDetail",
                            "SalesItemLineDetail": {"TaxCodeRef": {"value": code}, **detail}}  # fmt: skip
    if amount is not None:
        line["Amount"] = amount
    return line


def test_worked_invoice_sample() -> None:
    result = compute([sales(275), sales(12.75), sales(Qty=5, UnitPrice=9.5)], US, apply_tax_after_discount=False,
                     tax_override=None)  # fmt: skip
    assert result.subtotal == Decimal("335.25") and result.tax == Decimal("26.82")
    assert result.total == Decimal("362.07")
    assert result.lines[-1] == {"Amount": 335.25, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert result.tax_detail["TaxLine"][0]["TaxLineDetail"]["NetAmountTaxable"] == 335.25


def test_percent_discount_sample() -> None:
    discount = {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}}
    result = compute([sales(35, "NON"), discount], US, apply_tax_after_discount=False, tax_override=None)
    assert (result.discount, result.total) == (Decimal("3.50"), Decimal("31.50"))


def test_amount_discount_and_tax_after_discount() -> None:
    discount = {"DetailType": "DiscountLineDetail", "Amount": 10, "DiscountLineDetail": {"PercentBased": False}}
    before = compute([sales(100), discount], US, apply_tax_after_discount=False, tax_override=None)
    after = compute([sales(100), discount], US, apply_tax_after_discount=True, tax_override=None)
    assert (before.tax, before.total) == (Decimal("8.00"), Decimal("98.00"))
    assert (after.tax, after.total) == (Decimal("7.20"), Decimal("97.20"))


def test_explicit_total_tax_overrides_us_tax() -> None:
    result = compute([sales(100)], US, apply_tax_after_discount=False, tax_override=Decimal("5"))
    assert (result.tax, result.total) == (Decimal("5.00"), Decimal("105.00"))


def test_qty_times_unit_price_wins_and_zero_defaults_are_ignored() -> None:
    result = compute([sales(999, Qty=3, UnitPrice=2.5), sales(7, Qty=0, UnitPrice=0)], US,
                     apply_tax_after_discount=False, tax_override=None)  # fmt: skip
    assert [line["Amount"] for line in result.lines[:2]] == [7.5, 7]


def test_non_us_lines_need_a_tax_code() -> None:
    setup = TaxSetup(us=False, codes={"2": ("1", Decimal("20"))})
    with pytest.raises(errors.QBOError) as missing:
        compute([{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {}}], setup,
                apply_tax_after_discount=False, tax_override=None)  # fmt: skip
    assert missing.value.code == "6000"
    with pytest.raises(errors.QBOError) as unknown:
        compute([sales(10, "9")], setup, apply_tax_after_discount=False, tax_override=None)
    assert unknown.value.code == "2500"
    assert compute([sales(10, "2")], setup, apply_tax_after_discount=False, tax_override=None).total == Decimal("12")


def test_a_form_needs_a_sales_line() -> None:
    with pytest.raises(errors.QBOError):
        compute([{"DetailType": "DescriptionOnlyLineDetail", "Description": "x"}], US,
                apply_tax_after_discount=False, tax_override=None)  # fmt: skip
