"""What the plugin needs to know about a company before writing to it: country, tax codes, income account."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from . import errors, wire

if TYPE_CHECKING:
    from .client import QuickBooksClient

US_TAXABLE, US_NON_TAXABLE = "TAX", "NON"


@dataclass(frozen=True)
class CompanySetup:
    country: str
    name: str | None
    income_account: wire.Ref | None
    # non-US: sales tax code id → total rate percent
    tax_codes: dict[str, Decimal] = field(default_factory=dict)

    @property
    def us(self) -> bool:
        return self.country in ("US", "USA", "")

    def code_for_rate(self, rate: Decimal) -> str | None:
        """The active sales tax code with exactly this rate (lowest id when several)."""
        matches = sorted((code for code, value in self.tax_codes.items() if value == rate), key=_id_order)
        return matches[0] if matches else None

    @property
    def zero_code(self) -> str | None:
        return self.code_for_rate(Decimal(0))


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isascii() and value.isdigit() and len(value) <= 18 else (1 << 60, value)


async def load_company(client: QuickBooksClient) -> CompanySetup:
    """One batch request: CompanyInfo, income accounts, tax codes and tax rates."""
    reply = await client.batch(queries={
        "info": "SELECT * FROM CompanyInfo",
        "income": "SELECT * FROM Account WHERE AccountType = 'Income'",
        "codes": "SELECT * FROM TaxCode",
        "rates": "SELECT * FROM TaxRate",
    })  # fmt: skip
    info = reply.rows("info", wire.CompanyInfo)
    if not info:
        raise errors.QuickBooksError("QuickBooks returned no CompanyInfo")
    accounts = reply.rows("income", wire.Account)
    codes = reply.rows("codes", wire.TaxCode)
    rates = {rate.Id: rate.RateValue or Decimal(0) for rate in reply.rows("rates", wire.TaxRate)}
    # prefer the service income account QBO creates ("Services"), else the first income account
    accounts.sort(key=lambda a: (a.AccountSubType != "ServiceFeeIncome", _id_order(a.Id or "")))
    income = wire.Ref(value=accounts[0].Id or "", name=accounts[0].Name) if accounts else None
    tax_codes: dict[str, Decimal] = {}
    for code in codes:
        details = code.SalesTaxRateList.TaxRateDetail if code.SalesTaxRateList else []
        if code.Id is None or code.Active is False or not details:
            continue
        total = sum((rates.get(d.TaxRateRef.value if d.TaxRateRef else None, Decimal(0)) for d in details), Decimal(0))
        tax_codes[code.Id] = total
    return CompanySetup(
        country=(info[0].Country or "US").upper(), name=info[0].CompanyName, income_account=income, tax_codes=tax_codes
    )
