"""The embedded store's connection is taken in turns: a webhook's commit goes before queued background work, and
a transaction whose task is cancelled never stays open on it."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ledgerbridge.store import SQLiteStore
from ledgerbridge.store.turns import Turns


async def take(turns: Turns, name: str, order: list[str], *, urgent: bool = False, hold: float = 0.0) -> None:
    async with turns.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(hold)


async def test_an_urgent_turn_goes_before_background_work_queued_earlier_but_never_interrupts_the_holder() -> None:
    turns, order = Turns(), []
    holder = asyncio.create_task(take(turns, "delivery under way", order, hold=0.05))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(take(turns, f"claim {n}", order)) for n in (1, 2)]
    await asyncio.sleep(0)
    webhooks = [asyncio.create_task(take(turns, f"webhook {n}", order, urgent=True)) for n in (1, 2)]
    await asyncio.gather(holder, *queued, *webhooks)
    assert order == ["delivery under way", "webhook 1", "webhook 2", "claim 1", "claim 2"]
    assert not turns.held


async def test_a_waiter_that_gives_up_just_as_its_turn_comes_passes_the_turn_on() -> None:
    turns, order = Turns(), []
    async with turns.turn():
        impatient = asyncio.create_task(take(turns, "impatient", order, urgent=True))
        patient = asyncio.create_task(take(turns, "patient", order))
        await asyncio.sleep(0)
    impatient.cancel()  # the release above handed it the turn; it is cancelled before it runs
    await asyncio.wait_for(patient, 1.0)
    assert order == ["patient"]
    assert impatient.cancelled()
    assert not turns.held


async def test_a_waiter_cancelled_in_the_queue_leaves_the_others_their_turns() -> None:
    turns, order = Turns(), []
    async with turns.turn():
        gone = asyncio.create_task(take(turns, "gone", order))
        stays = asyncio.create_task(take(turns, "stays", order))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(stays, 1.0)
    assert order == ["stays"]
    assert not turns.held


async def test_a_write_cancelled_as_its_transaction_begins_leaves_the_store_usable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledgerbridge.db")
    await store.open()
    try:
        for attempt in range(20):  # cancelled at its first wait: the BEGIN, which the connection's thread still runs
            cancelled = asyncio.create_task(store.create_account(f"gone-{attempt}", "Gone"))
            await asyncio.sleep(0)
            cancelled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cancelled
            await store.create_account(f"kept-{attempt}", "Kept")  # before the fix: "within a transaction"
        names = {account.id for account in await store.list_accounts()}
        assert {f"kept-{n}" for n in range(20)} <= names
    finally:
        await store.close()
