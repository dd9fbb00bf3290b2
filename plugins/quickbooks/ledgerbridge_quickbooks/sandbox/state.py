"""Companies (realms) and their stored entities, seeded like a fresh QBO company; JSON (de)serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .totals import TaxSetup

CURRENCIES = {"US": "USD", "GB": "GBP", "CA": "CAD", "AU": "AUD", "NZ": "NZD", "IN": "INR", "FR": "EUR"}

# Seed ids are fixed so tests and demos can rely on them.
INCOME_ACCOUNT = "1"
UNDEPOSITED_FUNDS = "2"
DISCOUNTS_GIVEN = "3"
CHECKING = "4"
RECEIVABLE = "5"
SERVICES_ITEM = "1"


@dataclass
class Change:
    """One entity change: feeds CDC, the webhook dispatcher and the replay of deletes."""

    at: str
    epoch: float
    entity: str
    entity_id: str
    operation: str


@dataclass
class StoredReply:
    status: int
    body: bytes
    media_type: str
    stored_at: float


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    doc_numbers: dict[str, int] = field(default_factory=dict)
    voided: set[str] = field(default_factory=set)
    changes: list[Change] = field(default_factory=list)
    replies: dict[str, StoredReply] = field(default_factory=dict)

    @property
    def us(self) -> bool:
        return self.country == "US"

    @property
    def currency(self) -> str:
        return CURRENCIES.get(self.country, "USD")

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.entities.setdefault(entity, {})

    def next_id(self, entity: str) -> str:
        self.counters[entity] = self.counters.get(entity, 0) + 1
        return str(self.counters[entity])

    def tax_setup(self) -> TaxSetup:
        rates = self.table("TaxRate")
        if self.us:
            rate = rates.get("1", {}).get("RateValue", 8)
            return TaxSetup(us=True, us_rate_id="1", us_rate=Decimal(str(rate)))
        codes: dict[str, tuple[str, Decimal]] = {}
        for code in self.table("TaxCode").values():
            details = code.get("SalesTaxRateList", {}).get("TaxRateDetail", [])
            if details:
                rate_id = str(details[0]["TaxRateRef"]["value"])
                codes[code["Id"]] = (rate_id, Decimal(str(rates[rate_id]["RateValue"])))
        return TaxSetup(us=False, codes=codes)


def _meta(now: str) -> dict[str, Any]:
    return {"domain": "QBO", "sparse": False, "SyncToken": "0", "MetaData": {"CreateTime": now, "LastUpdatedTime": now}}


def _put(company: Company, entity: str, entity_id: str, now: str, body: dict[str, Any]) -> None:
    company.table(entity)[entity_id] = {"Id": entity_id, **body, **_meta(now)}
    number = int(entity_id) if entity_id.isdigit() else 0
    company.counters[entity] = max(company.counters.get(entity, 0), number)


def seed_company(realm_id: str, name: str, country: str, now: str) -> Company:
    """A new company as QBO creates it: chart of accounts, a Services item, tax codes, payment methods."""
    company = Company(realm_id=realm_id, name=name, country=country.upper())
    accounts = [
        (INCOME_ACCOUNT, "Services", "Income", "ServiceFeeIncome", "Revenue"),
        (UNDEPOSITED_FUNDS, "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
        (DISCOUNTS_GIVEN, "Discounts given", "Income", "DiscountsRefundsGiven", "Revenue"),
        (CHECKING, "Checking", "Bank", "Checking", "Asset"),
        (RECEIVABLE, "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset"),
        ("6", "Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue"),
    ]
    for account_id, acc_name, kind, sub, classification in accounts:
        _put(company, "Account", account_id, now, {
            "Name": acc_name, "FullyQualifiedName": acc_name, "SubAccount": False, "Active": True,
            "Classification": classification, "AccountType": kind, "AccountSubType": sub,
            "CurrentBalance": 0, "CurrentBalanceWithSubAccounts": 0,
            "CurrencyRef": {"value": company.currency},
        })  # fmt: skip
    _put(company, "Item", SERVICES_ITEM, now, {
        "Name": "Services", "FullyQualifiedName": "Services", "Active": True, "Type": "Service",
        "Taxable": True, "UnitPrice": 0, "IncomeAccountRef": {"value": INCOME_ACCOUNT, "name": "Services"},
    })  # fmt: skip
    for pm_id, pm_name, pm_type in [
        ("1", "Cash", "NON_CREDIT_CARD"),
        ("2", "Check", "NON_CREDIT_CARD"),
        ("3", "Visa", "CREDIT_CARD"),
        ("4", "MasterCard", "CREDIT_CARD"),
    ]:
        _put(company, "PaymentMethod", pm_id, now, {"Name": pm_name, "Active": True, "Type": pm_type})
    if company.us:
        _put(company, "TaxRate", "1", now, {
            "Name": "Sales tax", "Description": "Sales tax", "Active": True, "RateValue": 8,
            "SpecialTaxType": "NONE", "DisplayType": "ReadOnly",
        })  # fmt: skip
        for code, desc, taxable in [("TAX", "TAX", True), ("NON", "NON", False)]:
            company.table("TaxCode")[code] = {
                "Id": code, "Name": code, "Description": desc, "Active": True, "Taxable": taxable,
                "TaxGroup": False, **_meta(now),
            }  # fmt: skip
    else:
        for rate_id, rate_name, value in [("1", "Standard", 20), ("2", "Zero-rated", 0)]:
            _put(company, "TaxRate", rate_id, now, {
                "Name": rate_name, "Description": rate_name, "Active": True, "RateValue": value,
                "SpecialTaxType": "NONE", "DisplayType": "ReadOnly",
            })  # fmt: skip
        for code_id, code_name, rate_id in [("2", "20.0% S", "1"), ("3", "0.0% Z", "2")]:
            _put(company, "TaxCode", code_id, now, {
                "Name": code_name, "Description": code_name, "Active": True, "Taxable": True, "TaxGroup": False,
                "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": rate_id}, "TaxTypeApplicable":
                    "TaxOnAmount", "TaxOrder": 0}]},
                "PurchaseTaxRateList": {"TaxRateDetail": []},
            })  # fmt: skip
    _put(company, "CompanyInfo", "1", now, {
        "CompanyName": name, "LegalName": name, "Country": company.country,
        "CompanyAddr": {"Id": "1", "Country": company.country},
        "SupportedLanguages": "en", "FiscalYearStartMonth": "January",
        "CompanyStartDate": now[:10], "NameValue": [],
    })  # fmt: skip
    return company


def company_to_json(company: Company) -> dict[str, Any]:
    return {
        "realm_id": company.realm_id,
        "name": company.name,
        "country": company.country,
        "entities": company.entities,
        "tombstones": company.tombstones,
        "counters": company.counters,
        "doc_numbers": company.doc_numbers,
        "voided": sorted(company.voided),
        "changes": [vars(change) for change in company.changes],
        "replies": {
            key: {"status": r.status, "body": r.body.decode(), "media_type": r.media_type, "stored_at": r.stored_at}
            for key, r in company.replies.items()
        },
    }


def company_from_json(data: dict[str, Any]) -> Company:
    return Company(
        realm_id=data["realm_id"],
        name=data["name"],
        country=data["country"],
        entities=data["entities"],
        tombstones=data.get("tombstones", {}),
        counters=data.get("counters", {}),
        doc_numbers=data.get("doc_numbers", {}),
        voided=set(data.get("voided", [])),
        changes=[Change(**change) for change in data.get("changes", [])],
        replies={
            key: StoredReply(r["status"], r["body"].encode(), r["media_type"], r["stored_at"])
            for key, r in data.get("replies", {}).items()
        },
    )
