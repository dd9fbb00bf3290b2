"""The plugin author's side: ledgerbridge's conformance suite, run against this plugin."""

from __future__ import annotations

from typing import Any

import ledgerbridge_plainledger
from ledgerbridge import AccountContext
from ledgerbridge.testing.conformance import plugin_test_class


async def journal_lines(ctx: AccountContext) -> Any:
    path = ledgerbridge_plainledger.journal(ctx)
    return path.read_text().splitlines() if path.exists() else []


TestPlainLedgerConformance = plugin_test_class(ledgerbridge_plainledger, "plainledger", observe=journal_lines)
