"""ledgerbridge_xero: Xero as an accounting backend for ledgerbridge, and a local Xero sandbox."""
