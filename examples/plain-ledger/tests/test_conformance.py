"""The plugin author's side: ledgerbridge's conformance suite, run against this plugin.

The suite needs no pytest plugin and none of ledgerbridge's own test settings: `python -m pytest tests` in
this folder runs it, wherever the folder lives.
"""

from __future__ import annotations

import ledgerbridge_plainledger
from ledgerbridge import AccountContext
from ledgerbridge.testing.conformance import plugin_test_class


async def journal_lines(ctx: AccountContext) -> list[dict[str, object]]:
    """What the plugin has booked for the account: the kit checks a repeated delivery leaves it unchanged."""
    return ledgerbridge_plainledger.entries(ctx)


TestPlainLedgerConformance = plugin_test_class(ledgerbridge_plainledger, "plainledger", observe=journal_lines)
