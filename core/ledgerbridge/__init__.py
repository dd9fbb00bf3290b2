"""ledgerbridge: keeps a CRM and an accounting system in step."""

__version__ = "0.1.0"
