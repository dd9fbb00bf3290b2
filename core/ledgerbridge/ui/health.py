"""A plugin's health on its card, and an account's on the account list: counts with links into Activity,
the last successful sync as a relative time, and "needs attention" with the fix as a button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account, DeliveryTally

FixMethod = Literal["GET", "POST"]


@dataclass(frozen=True)
class Fix:
    label: str
    url: str
    method: FixMethod = "GET"


@dataclass(frozen=True)
class Health:
    pending: int
    skipped: int
    failed: int
    last_sync_at: float | None
    problems: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def plugin_health(
    account: Account,
    plugin: str,
    tally: DeliveryTally | None,
    *,
    paused_reason: str | None,
    reconnect: Fix | None,
    review_problems: tuple[str, ...] = (),
) -> Health:
    counts = tally.counts if tally else {}
    failed = counts.get("dead", 0)
    problems: list[str] = []
    fixes: list[Fix] = []
    if paused_reason:
        problems.append(f"Deliveries are paused: {paused_reason}")
        if reconnect is not None:
            fixes.append(reconnect)
    if failed:
        problems.append(
            f"{plural(failed, 'delivery', 'deliveries')} failed and {'waits' if failed == 1 else 'wait'} for you."
        )
        fixes.append(Fix(f"Retry {failed}", f"/accounts/{account.id}/plugins/{plugin}/retry-failed", "POST"))
    if review_problems:
        problems.append(f"Review requests are on but cannot be sent: {review_problems[0]}")
        fixes.append(Fix("Set the review link", f"/accounts/{account.id}/settings/integrations#review-requests"))
    return Health(
        pending=counts.get("pending", 0),
        skipped=counts.get("skipped", 0),
        failed=failed,
        last_sync_at=tally.last_done_at if tally else None,
        problems=tuple(problems),
        fixes=tuple(fixes),
    )


@dataclass(frozen=True)
class AccountHealth:
    account: Account
    failed: int
    pending: int
    paused: tuple[str, ...]
    last_sync_at: float | None

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed or self.paused)

    @property
    def summary(self) -> str:
        if not self.needs_attention:
            return "All good" + (f" · {plural(self.pending, 'pending', 'pending')}" if self.pending else "")
        parts = []
        if self.failed:
            parts.append(f"{plural(self.failed, 'delivery', 'deliveries')} failed")
        if self.paused:
            parts.append(f"{', '.join(self.paused)} paused")
        return "Needs attention: " + "; ".join(parts)


async def account_health(runtime: Runtime, account: Account) -> AccountHealth:
    tallies = await runtime.store.tally_deliveries(account.id)
    states = await runtime.store.list_plugin_states(account.id)
    paused = tuple(sorted(s.plugin for s in states if s.enabled and s.paused_reason))
    done = [t.last_done_at for t in tallies.values() if t.last_done_at is not None]
    return AccountHealth(
        account=account,
        failed=sum(t.counts.get("dead", 0) for t in tallies.values()),
        pending=sum(t.counts.get("pending", 0) for t in tallies.values()),
        paused=paused,
        last_sync_at=max(done) if done else None,
    )
