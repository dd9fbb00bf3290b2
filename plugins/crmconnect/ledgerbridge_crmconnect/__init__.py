"""The crmconnect plugin for ledgerbridge."""
