"""Xero's documents as the API spells them, decoded leniently (unknown fields ignored), money as Decimal."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

_MSDATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def parse_msdate(value: str | None) -> datetime | None:
    """`/Date(1573755038314+0000)/` → an aware datetime (the offset is informative; the ms are UTC)."""
    found = _MSDATE.search(value or "")
    return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC) if found else None


class ContactRef(msgspec.Struct, kw_only=True):
    ContactID: str
    Name: str | None = None
    EmailAddress: str | None = None


class XAddress(msgspec.Struct, kw_only=True):
    AddressType: str | None = None
    AddressLine1: str | None = None
    AddressLine2: str | None = None
    City: str | None = None
    Region: str | None = None
    PostalCode: str | None = None
    Country: str | None = None


class XPhone(msgspec.Struct, kw_only=True):
    PhoneType: str | None = None
    PhoneNumber: str | None = None
    PhoneAreaCode: str | None = None
    PhoneCountryCode: str | None = None


class XContact(msgspec.Struct, kw_only=True):
    ContactID: str
    Name: str = ""
    ContactStatus: str = "ACTIVE"
    EmailAddress: str | None = None
    FirstName: str | None = None
    LastName: str | None = None
    Addresses: list[XAddress] = []
    Phones: list[XPhone] = []
    MergedToContactID: str | None = None
    UpdatedDateUTC: str | None = None

    @property
    def updated(self) -> datetime | None:
        return parse_msdate(self.UpdatedDateUTC)


class XPaymentRef(msgspec.Struct, kw_only=True):
    PaymentID: str
    Amount: Decimal = Decimal(0)


class XInvoice(msgspec.Struct, kw_only=True):
    InvoiceID: str
    Type: str
    Status: str
    Contact: ContactRef
    InvoiceNumber: str = ""
    Total: Decimal = Decimal(0)
    AmountDue: Decimal = Decimal(0)
    AmountPaid: Decimal = Decimal(0)
    CurrencyCode: str = "USD"
    Date: str | None = None
    FullyPaidOnDate: str | None = None
    UpdatedDateUTC: str | None = None
    Payments: list[XPaymentRef] = []

    @property
    def day(self) -> date | None:
        found = parse_msdate(self.Date)
        return found.date() if found else None


class XPayment(msgspec.Struct, kw_only=True):
    PaymentID: str
    Amount: Decimal = Decimal(0)
    Status: str = "AUTHORISED"


class XBankTransaction(msgspec.Struct, kw_only=True):
    BankTransactionID: str
    Total: Decimal = Decimal(0)
    Status: str = "AUTHORISED"


class XTaxComponent(msgspec.Struct, kw_only=True):
    Name: str = ""
    Rate: Decimal = Decimal(0)


class XTaxRate(msgspec.Struct, kw_only=True):
    TaxType: str
    Name: str = ""
    Status: str = "ACTIVE"
    EffectiveRate: Decimal = Decimal(0)
    CanApplyToRevenue: bool = False
    TaxComponents: list[XTaxComponent] = []


class XAccount(msgspec.Struct, kw_only=True):
    AccountID: str
    Code: str | None = None
    Name: str = ""
    Type: str = ""
    Status: str = "ACTIVE"


class XOrganisation(msgspec.Struct, kw_only=True):
    Name: str
    BaseCurrency: str = "USD"
    CountryCode: str | None = None


class Contacts(msgspec.Struct, kw_only=True):
    Contacts: list[XContact] = []


class Invoices(msgspec.Struct, kw_only=True):
    Invoices: list[XInvoice] = []


class Payments(msgspec.Struct, kw_only=True):
    Payments: list[XPayment] = []


class BankTransactions(msgspec.Struct, kw_only=True):
    BankTransactions: list[XBankTransaction] = []


class TaxRates(msgspec.Struct, kw_only=True):
    TaxRates: list[XTaxRate] = []


class Accounts(msgspec.Struct, kw_only=True):
    Accounts: list[XAccount] = []


class Organisations(msgspec.Struct, kw_only=True):
    Organisations: list[XOrganisation] = []


contacts = msgspec.json.Decoder(Contacts)
invoices = msgspec.json.Decoder(Invoices)
payments = msgspec.json.Decoder(Payments)
bank_transactions = msgspec.json.Decoder(BankTransactions)
tax_rates = msgspec.json.Decoder(TaxRates)
accounts = msgspec.json.Decoder(Accounts)
organisations = msgspec.json.Decoder(Organisations)
