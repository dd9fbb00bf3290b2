"""Background work a plugin contributes: pollers, importers, reconcilers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerbridge.context import AccountContext


@dataclass(frozen=True)
class BackgroundTask:
    """Run `run(account)` every `every_seconds` for each account that has the plugin enabled.

    Runs of one task for one account never overlap. An exception is logged to the account's activity
    and the task runs again at its next tick; `ReauthorizationRequired` pauses it with the deliveries.
    """

    name: str
    every_seconds: float
    run: Callable[[AccountContext], Awaitable[None]]
