"""What the plugin needs to know about a connected organisation, read once per tenant per process:
its currency, its revenue tax rates and its bank accounts. Missing tax rates are created on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ledgerbridge import PermanentFailure

from . import wire
from .client import XeroClient


@dataclass
class OrganisationSetup:
    name: str
    currency: str
    tax_rates: list[wire.XTaxRate]
    bank_accounts: list[wire.XAccount]
    revenue_codes: set[str] = field(default_factory=set)

    def tax_type_for(self, rate: Decimal) -> str | None:
        usable = [r for r in self.tax_rates if r.Status == "ACTIVE" and r.CanApplyToRevenue and r.EffectiveRate == rate]
        if rate == 0 and any(r.TaxType == "NONE" for r in usable):
            return "NONE"
        return usable[0].TaxType if usable else None

    def bank_account(self, code: str) -> wire.XAccount:
        if code:
            for account in self.bank_accounts:
                if account.Code == code:
                    return account
            raise PermanentFailure(f"Xero has no active bank account with code {code!r}: change the Xero settings")
        if not self.bank_accounts:
            raise PermanentFailure("the Xero organisation has no active bank account to receive payments into")
        return self.bank_accounts[0]


async def load(client: XeroClient) -> OrganisationSetup:
    organisation = wire.organisations.decode(await client.get("/Organisation")).Organisations[0]
    rates = wire.tax_rates.decode(await client.get("/TaxRates")).TaxRates
    accounts = wire.accounts.decode(await client.get("/Accounts", params={"where": 'Status=="ACTIVE"'})).Accounts
    return OrganisationSetup(
        name=organisation.Name,
        currency=organisation.BaseCurrency,
        tax_rates=rates,
        bank_accounts=[a for a in accounts if a.Type == "BANK"],
        revenue_codes={a.Code for a in accounts if a.Code and a.Type in ("REVENUE", "SALES", "OTHERINCOME")},
    )


async def ensure_tax_type(client: XeroClient, setup: OrganisationSetup, rate: Decimal, label: str) -> str:
    """The TaxType of an active revenue rate equal to `rate`, creating "<label> (rate%)" when none exists."""
    found = setup.tax_type_for(rate)
    if found is not None:
        return found
    name = f"{label} ({rate.normalize():f}%)"[:50]
    body = {
        "TaxRates": [
            {
                "Name": name,
                "ReportTaxType": "OUTPUT",
                "TaxComponents": [{"Name": label[:50], "Rate": float(rate), "IsCompound": False}],
            }
        ]
    }
    made = wire.tax_rates.decode(await client.put("/TaxRates", body, key=f"taxrate:{client.tenant_id}:{rate}")).TaxRates
    setup.tax_rates.extend(made)
    return made[0].TaxType
