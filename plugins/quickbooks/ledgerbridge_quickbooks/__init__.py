"""The quickbooks plugin for ledgerbridge."""
