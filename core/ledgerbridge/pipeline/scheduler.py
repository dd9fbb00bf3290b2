"""Runs plugins' background tasks (pollers, importers) for every account that has the plugin enabled.

Replicas sharing a store run each task once per account across the fleet: the replica holding the
task's lease for an account runs it; another takes over when that one stops renewing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ledgerbridge.coordination import lease, new_owner
from ledgerbridge.errors import ReauthorizationRequired
from ledgerbridge.pipeline.dispatcher import describe, error_details
from ledgerbridge.tasks import BackgroundTask

if TYPE_CHECKING:
    from ledgerbridge.context import AccountContext
    from ledgerbridge.runtime import Runtime

logger = logging.getLogger("ledgerbridge.scheduler")


class Scheduler:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.owner = new_owner("scheduler")

    def start(self, plugin: str, tasks: list[BackgroundTask]) -> None:
        for task in tasks:
            self._tasks.append(asyncio.create_task(self._loop(plugin, task), name=f"{plugin}:{task.name}"))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def run_once(self, plugin: str, task: BackgroundTask) -> None:
        """One tick: run the task for each enabled, unpaused account, side by side."""
        contexts = await self._runtime.plugin_context(plugin).accounts(enabled_only=True)
        states = [await ctx.state() for ctx in contexts]
        await asyncio.gather(
            *(self._run_for(ctx, task) for ctx, state in zip(contexts, states, strict=True) if not state.paused_reason)
        )

    async def _loop(self, plugin: str, task: BackgroundTask) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once(plugin, task)
            except Exception:
                logger.exception("background task %s of %s failed", task.name, plugin)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), task.every_seconds)

    async def _run_for(self, ctx: AccountContext, task: BackgroundTask) -> None:
        # held a tick plus a lease past each run, so this replica keeps it from tick to tick
        ttl = task.every_seconds + self._runtime.settings.lease_seconds
        name = f"task:{ctx.plugin}:{task.name}:{ctx.account_id}"
        async with lease(self._runtime.store, name, self.owner, ttl, self._runtime.clock) as mine:
            if mine:
                await self._run(ctx, task)

    async def _run(self, ctx: AccountContext, task: BackgroundTask) -> None:
        try:
            await task.run(ctx)
        except ReauthorizationRequired as exc:
            await ctx.pause(describe(exc))
        except Exception as exc:
            logger.warning("%s/%s for account %s: %s", ctx.plugin, task.name, ctx.account_id, describe(exc))
            await ctx.log(f"{task.name} failed: {describe(exc)}", level="warning", **error_details(exc))
