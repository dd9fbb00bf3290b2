"""CRM amounts → QuickBooks lines: totals exact to the cent (US folding, non-US tax codes)."""

from __future__ import annotations

from decimal import Decimal

from ledgerbridge import LineItem, Money, TaxRate
from ledgerbridge_quickbooks import pricing, wire
from ledgerbridge_quickbooks.company import CompanySetup

REFS = {name: wire.Ref(value=str(n)) for n, name in enumerate(["Services", "A", "B", "C"], start=1)}
UK = CompanySetup(country="GB", name="UK Ltd", income_account=None,
                  tax_codes={"2": Decimal("20"), "3": Decimal("0")})  # fmt: skip


def item(name: str, qty: str, price: str, rate: str | None = None) -> LineItem:
    taxes = (TaxRate(name="VAT", rate_percent=Decimal(rate)),) if rate else ()
    return LineItem(name=name, quantity=Decimal(qty), unit_price=Money(amount=Decimal(price), currency="GBP"),
                    taxes=taxes)  # fmt: skip


def total_of(lines: list[wire.Line]) -> Decimal:
    return sum((line.Amount or Decimal(0)) for line in lines if line.DetailType == "SalesItemLineDetail")


def test_allocate_splits_cents_exactly_in_proportion() -> None:
    parts = pricing.allocate(Decimal("100.00"), [Decimal(1), Decimal(1), Decimal(1)])
    assert sum(parts) == Decimal("100.00") and sorted(parts) == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]


def test_us_folding_keeps_quantities_and_hits_the_total() -> None:
    lines = [item("A", "3", "33.33"), item("B", "1", "19.99")]
    totals = pricing.Totals(subtotal=Decimal("119.98"), discount=Decimal("10"), tax=Decimal("8.87"),
                            total=Decimal("118.85"))  # fmt: skip
    us = CompanySetup(country="US", name=None, income_account=None)
    priced = pricing.price(lines, totals, us, REFS)
    assert total_of(priced.lines) == Decimal("118.85") and priced.folded
    for line in priced.lines:
        detail = line.SalesItemLineDetail
        assert detail is not None and detail.TaxCodeRef == wire.Ref(value="NON")
        assert pricing.money((detail.Qty or 0) * (detail.UnitPrice or 0)) == line.Amount


def test_non_us_uses_tax_codes_and_a_discount_line_when_they_reproduce_the_total() -> None:
    lines = [item("A", "2", "50.00", "20"), item("B", "1", "10.00")]
    # tax after a 10.00 discount: 100 → 90.91 taxable (pro rata) → 18.18; total 110 − 10 + 18.18
    totals = pricing.Totals(subtotal=Decimal("110"), discount=Decimal("10"), tax=Decimal("18.18"),
                            total=Decimal("118.18"))  # fmt: skip
    priced = pricing.price(lines, totals, UK, REFS)
    assert not priced.folded and priced.apply_tax_after_discount is True
    codes = [line.SalesItemLineDetail.TaxCodeRef.value for line in priced.lines if line.SalesItemLineDetail]  # type: ignore[union-attr]
    assert codes == ["2", "3"]
    assert [line.Amount for line in priced.lines if line.DetailType == "DiscountLineDetail"] == [Decimal("10")]


def test_non_us_falls_back_to_the_zero_code_when_no_code_matches_the_crm_rate() -> None:
    lines = [item("A", "1", "100.00", "7.5")]
    totals = pricing.Totals(subtotal=Decimal("100"), discount=Decimal("0"), tax=Decimal("7.50"),
                            total=Decimal("107.50"))  # fmt: skip
    priced = pricing.price(lines, totals, UK, REFS)
    assert priced.folded and total_of(priced.lines) == Decimal("107.50")
    assert priced.lines[0].SalesItemLineDetail.TaxCodeRef == wire.Ref(value="3")  # type: ignore[union-attr]


def test_an_amount_not_expressible_as_quantity_times_price_becomes_one_unit() -> None:
    lines = [item("A", "3", "1.00")]
    totals = pricing.Totals(subtotal=Decimal("3"), discount=Decimal("0"), tax=Decimal("0.01"), total=Decimal("3.01"))
    priced = pricing.price(lines, totals, CompanySetup(country="US", name=None, income_account=None), REFS)
    detail = priced.lines[0].SalesItemLineDetail
    assert detail is not None and pricing.money((detail.Qty or 0) * (detail.UnitPrice or 0)) == Decimal("3.01")
