"""The running core: store, plugins, pipeline and secrets, wired together for one server process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ledgerbridge.cache import TtlCache
from ledgerbridge.context import AccountContext, PluginContext, new_event
from ledgerbridge.models import Event, Notification, event_type
from ledgerbridge.pipeline import Backoff, Dispatcher, Intake, Scheduler
from ledgerbridge.plugins import PluginManager
from ledgerbridge.secrets import SecretBox
from ledgerbridge.settings import Settings
from ledgerbridge.store import Account, Store, open_store

logger = logging.getLogger("ledgerbridge")
CACHE_SECONDS = 1.0


class SettingsError(ValueError):
    """Plugin settings that do not fit the plugin's schema."""


class Runtime:
    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager,
        *,
        store: Store | None = None,
        secrets: SecretBox | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.store: Store = store or open_store(settings)
        self.secrets = secrets or SecretBox.from_environment_or_file(settings.data_dir, settings.secret_keys)
        self.clock = clock
        self.sandbox_urls: dict[str, str] = {}
        self._resumed_at: dict[tuple[str, str], float] = {}
        self._plugin_contexts: dict[str, PluginContext] = {}
        # short-lived, so a change made by the CLI in another process shows within a second
        self._enabled: TtlCache[frozenset[str]] = TtlCache(CACHE_SECONDS)
        self._accounts: TtlCache[Account | None] = TtlCache(CACHE_SECONDS)
        self._bindings: TtlCache[str | None] = TtlCache(CACHE_SECONDS)
        self.dispatcher = Dispatcher(
            self,
            concurrency=settings.workers,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            backoff=Backoff(settings.backoff_base_seconds, settings.backoff_cap_seconds),
            poll_interval=settings.poll_interval_seconds,
        )
        self.intake = Intake(self.store, clock, on_commit=self.dispatcher.wake)
        self.store.watch(self.dispatcher.wake)
        self.scheduler = Scheduler(self)

    # lifecycle

    async def start(self, *, workers: bool = True) -> None:
        await self.store.open()
        for name in self.plugins.names():
            await self.plugins.call(name, "startup", plugin=self.plugin_context(name))
        if workers:
            self.dispatcher.start()
            for name in self.plugins.names():
                self.scheduler.start(name, self.plugins.background_tasks(name, self.plugin_context(name)))

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.intake.drain()
        await self.dispatcher.stop()
        for name in self.plugins.names():
            try:
                await self.plugins.call(name, "shutdown", plugin=self.plugin_context(name))
            except Exception:
                logger.exception("plugin %s failed to shut down", name)
        await self.store.close()

    # contexts

    def plugin_context(self, name: str) -> PluginContext:
        if name not in self._plugin_contexts:
            self._plugin_contexts[name] = PluginContext(self, name)
        return self._plugin_contexts[name]

    async def account_context(self, account_id: str, plugin: str) -> AccountContext | None:
        account = await self.store.get_account(account_id)
        return AccountContext(self, plugin, account) if account else None

    # accounts and enablement

    async def create_account(self, account_id: str, name: str, plugins: list[str] | None = None) -> Account:
        account = await self.store.create_account(account_id, name)
        for plugin in self.plugins.names() if plugins is None else plugins:
            await self.set_enabled(account_id, plugin, True)
        return account

    async def enabled_plugins(self, account_id: str) -> frozenset[str]:
        return await self._enabled.get(account_id, lambda: self.store.enabled_plugins(account_id))

    async def account(self, account_id: str) -> Account | None:
        return await self._accounts.get(account_id, lambda: self.store.get_account(account_id), keep_none=False)

    async def account_id_for(self, plugin: str, external_id: str) -> str | None:
        """The account a vendor identity is bound to (cached: webhooks ask this on every request)."""
        return await self._bindings.get(
            (plugin, external_id), lambda: self.store.find_account_by_external_id(plugin, external_id), keep_none=False
        )

    async def bind_external_id(self, account_id: str, plugin: str, external_id: str | None) -> None:
        await self.store.set_external_id(account_id, plugin, external_id)
        self._bindings.forget()

    async def set_enabled(self, account_id: str, plugin: str, enabled: bool) -> None:
        if not self.plugins.has(plugin):
            raise KeyError(f"no plugin named {plugin!r} is installed")
        await self.store.set_plugin_enabled(account_id, plugin, enabled)
        self._enabled.forget(account_id)
        if enabled:
            self.dispatcher.wake()

    def forget_account(self, account_id: str) -> None:
        self._enabled.forget(account_id)
        self._accounts.forget(account_id)
        self._bindings.forget()

    # settings

    def decode_settings(self, plugin: str, values: dict[str, Any]) -> Any:
        schema = self.plugins.settings_schema(plugin)
        if schema is None:
            return dict(values)
        try:
            return msgspec.convert(values, schema, strict=True)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"{plugin} settings: {exc}") from exc

    # pipeline

    async def publish(self, account_id: str, source: str, external_id: str, event: Event) -> bool:
        enabled = await self.enabled_plugins(account_id)
        if source not in enabled:
            consumers: frozenset[str] = frozenset()
        elif isinstance(event, Notification):
            consumers = frozenset({source}) if self.plugins.implements(source, "on_notification") else frozenset()
        else:
            consumers = (self.plugins.consumers(event_type(event)) & enabled) - {source}
        return await self.intake.publish(new_event(account_id, source, external_id, event, consumers))

    async def pause(self, account_id: str, plugin: str, reason: str, *, observed_at: float | None = None) -> bool:
        """Pause one plugin for one account; False when it was resumed after `observed_at` (a stale refusal
        from before the user reconnected must not undo the reconnection)."""
        if observed_at is not None and self._resumed_at.get((account_id, plugin), float("-inf")) >= observed_at:
            return False
        state = await self.store.get_plugin_state(account_id, plugin)
        if state.paused_reason != reason:
            await self.store.set_paused(account_id, plugin, reason)
            await self.store.log_activity(
                account_id, plugin, "warning", f"deliveries paused: {reason}", {}, self.clock()
            )
        return True

    async def resume(self, account_id: str, plugin: str) -> None:
        self._resumed_at[(account_id, plugin)] = self.clock()
        state = await self.store.get_plugin_state(account_id, plugin)
        if state.paused_reason is not None:
            await self.store.set_paused(account_id, plugin, None)
            await self.store.log_activity(account_id, plugin, "info", "deliveries resumed", {}, self.clock())
        self.dispatcher.wake()
