"""The conformance kit's producer-side checks, run on the QuickBooks plugin as on any third party's: every
route refuses malformed requests with a 4xx, and the background tasks run for an account that never
connected. (Its consumer side is tested against the sandbox in this folder's other tests.)"""

from __future__ import annotations

import asyncio

import ledgerbridge_quickbooks.plugin as plugin
from ledgerbridge.testing.conformance import Kit

KIT = Kit(plugin.QuickBooksPlugin, "quickbooks", prepare=None, observe=None)


def test_routes_refuse_malformed_requests_with_a_4xx() -> None:
    asyncio.run(KIT.malformed_requests_are_refused())


def test_background_tasks_run_for_an_unconnected_account() -> None:
    asyncio.run(KIT.tasks_run_unconnected())
