"""The running core: store, plugins, pipeline and secrets, wired together for one server process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ledgerbridge import rules
from ledgerbridge.cache import TtlCache, Versions
from ledgerbridge.context import AccountContext, PluginContext, new_event
from ledgerbridge.errors import RetryLater
from ledgerbridge.events import ROLES, Role, decode_event
from ledgerbridge.models import Event
from ledgerbridge.pipeline import Backoff, Dispatcher, Intake, Scheduler
from ledgerbridge.plugins import PluginManager
from ledgerbridge.sandboxes import SandboxSpec
from ledgerbridge.secrets import SecretBox
from ledgerbridge.settings import Settings
from ledgerbridge.store import Account, Delivery, PluginState, Store, open_store

logger = logging.getLogger("ledgerbridge")
CACHE_SECONDS = 1.0


class SettingsError(ValueError):
    """Plugin settings that do not fit the plugin's schema."""


class RoleConflict(ValueError):
    """Enabling a plugin would give the account two plugins of one role (two sets of books)."""

    def __init__(self, plugin: str, role: Role, current: str) -> None:
        super().__init__(
            f"{current} already keeps this account's {rules.ROLE_WORDS[role]}: switch from {current} to {plugin}"
            f" explicitly, or turn {current} off first (two {role} plugins would book everything twice)"
        )
        self.plugin, self.role, self.current = plugin, role, current


class NothingToSend(ValueError):
    """A skipped delivery that cannot be sent now (not skipped, or no plugin of its role is on)."""


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
        self.sandbox_specs: dict[str, SandboxSpec] = {}  # of the sandboxes mounted in this server
        self._resumed_at: dict[tuple[str, str], float] = {}
        self._plugin_contexts: dict[str, PluginContext] = {}
        # short-lived, so a change made by the CLI in another process shows within a second
        self._enabled: TtlCache[frozenset[str]] = TtlCache(CACHE_SECONDS)
        self._accounts: TtlCache[Account | None] = TtlCache(CACHE_SECONDS)
        self._bindings: TtlCache[str | None] = TtlCache(CACHE_SECONDS)
        # bumped per account when its settings, secrets, enablement or bindings change through this process
        self.config_versions = Versions()
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
        plugins.register_core_plugins()  # the product's own rules run in every server
        plugins.bind(self.plugin_context)

    # what a plugin's contexts see of the core (ledgerbridge.context.Core)

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def sandbox_url(self, name: str) -> str | None:
        return self.sandbox_urls.get(name)

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
        """Stop the background work, then the plugins; the store is closed whatever failed before it (an open
        SQLite connection would keep the database locked for the next server on this data folder)."""
        try:
            await self.scheduler.stop()
            await self.intake.drain()
            await self.dispatcher.stop()
            for name in self.plugins.names():
                try:
                    await self.plugins.call(name, "shutdown", plugin=self.plugin_context(name))
                except Exception:
                    logger.exception("plugin %s failed to shut down", name)
        finally:
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

    def default_plugins(self) -> list[str]:
        """What a new account starts with: every plugin without a role, and one plugin per role."""
        names = [n for n in self.plugins.names() if self.plugins.role(n) is None and not self.plugins.is_core(n)]
        for role in ROLES:
            names += self.plugins.with_role(role)[:1]
        return sorted(names)

    async def create_account(self, account_id: str, name: str, plugins: list[str] | None = None) -> Account:
        chosen = self.default_plugins() if plugins is None else plugins
        self.check_roles(chosen)
        account = await self.store.create_account(account_id, name)
        for plugin in chosen:
            await self.set_enabled(account_id, plugin, True)
        return account

    def check_roles(self, plugins: list[str]) -> None:
        """Refuse a set of plugins with two of one role."""
        seen: dict[str, str] = {}
        for plugin in plugins:
            role = self.plugins.role(plugin) if self.plugins.has(plugin) else None
            if role is not None:
                if role in seen:
                    raise RoleConflict(plugin, role, seen[role])
                seen[role] = plugin

    async def enabled_plugins(self, account_id: str) -> frozenset[str]:
        """The plugins on for the account, the core's own policies included (they are always on)."""
        stored = await self._enabled.get(account_id, lambda: self.store.enabled_plugins(account_id))
        return stored | frozenset(n for n in self.plugins.names() if self.plugins.is_core(n))

    async def active_plugin(self, account_id: str, role: Role) -> str | None:
        return rules.active_plugin(self.plugins, await self.enabled_plugins(account_id), role)

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
        self.config_versions.bump(account_id)

    async def set_enabled(self, account_id: str, plugin: str, enabled: bool, *, switch: bool = False) -> str | None:
        """Turn a plugin on or off for an account; the plugin of the same role that `switch` turned off, if any.

        At most one plugin per role is on: turning on a second one raises `RoleConflict` unless `switch`.
        """
        if not self.plugins.has(plugin):
            raise KeyError(f"no plugin named {plugin!r} is installed")
        if self.plugins.is_core(plugin):
            raise ValueError(f"{plugin} is part of the core and always on; use its own switch")
        replaced = None
        role = self.plugins.role(plugin)
        if enabled and role is not None:
            current = await self.active_plugin(account_id, role)
            if current is not None and current != plugin:
                if not switch:
                    raise RoleConflict(plugin, role, current)
                await self.store.set_plugin_enabled(account_id, current, False)
                replaced = current
        await self.store.set_plugin_enabled(account_id, plugin, enabled)
        self._enabled.forget(account_id)
        self.config_versions.bump(account_id)
        if enabled:
            if not self.plugins.connects(plugin):
                await self.store.mark_connected(account_id, plugin, self.clock())
            self.dispatcher.wake()
        return replaced

    async def record_connection(self, account_id: str, plugin: str, at: float | None = None) -> float:
        """A plugin connected to its vendor for the account; the first such moment is its sync start."""
        return await self.store.mark_connected(account_id, plugin, self.clock() if at is None else at)

    async def sync_start(self, account_id: str) -> float | None:
        """From when the account's books take documents (its accounting plugin's start, or the backfill)."""
        account = await self.account(account_id)
        plugin = await self.active_plugin(account_id, "accounting")
        if account is None or plugin is None:
            return None
        return rules.sync_start(account, await self.store.get_plugin_state(account_id, plugin))

    async def is_first_invoice(self, account_id: str, customer_id: str, invoice_id: str) -> bool:
        books = await self.active_plugin(account_id, "accounting")
        ctx = await self.account_context(account_id, books) if books else None
        if books is None or ctx is None:
            raise RetryLater(rules.no_plugin_reason(self.plugins, "accounting"), retry_after=300)
        return await self.plugins.is_first_invoice(books, ctx, customer_id, invoice_id)

    async def default_review_link(self, account_id: str) -> str | None:
        crm = await self.active_plugin(account_id, "crm")
        ctx = await self.account_context(account_id, crm) if crm else None
        if crm is None or ctx is None:
            return None
        try:
            return await self.plugins.default_review_link(crm, ctx)
        except Exception:
            logger.exception("%s could not tell its default review link", crm)
            return None

    async def set_backfill(self, account_id: str, since: float | None) -> None:
        await self.store.set_backfill_since(account_id, since)
        self._accounts.forget(account_id)

    async def skip_reason(self, account: Account, state: PluginState, event: Event) -> str | None:
        return rules.skip_reason(self.plugins, await self.enabled_plugins(account.id), account, state, event)

    async def send_skipped(self, account_id: str, delivery: Delivery, *, one_by_one: bool = True) -> str:
        """Queue a skipped delivery now, to its plugin or its role's plugin; the plugin it went to.

        Sent in bulk (`one_by_one=False`), a delivery goes only when sending it is what the skip was waiting for:
        a vendor's routine notice, or a document created before the books' sync start, goes only when chosen by
        itself (a bulk send must not book old documents the sync start was set to leave out).
        """
        if delivery.state != "skipped":
            raise NothingToSend(f"delivery {delivery.id} is {delivery.state}, not skipped")
        if not one_by_one:
            await self._check_bulk_send(account_id, delivery)
        target = delivery.plugin
        role = rules.role_of_target(target)
        if role is not None:
            active = await self.active_plugin(account_id, role)
            if active is None:
                raise NothingToSend(rules.no_plugin_reason(self.plugins, role))
            target = active
        elif target not in await self.enabled_plugins(account_id):
            role = self.plugins.role(target) if self.plugins.has(target) else None
            active = await self.active_plugin(account_id, role) if role is not None else None
            if active is None:
                raise NothingToSend(f"{target} is off for this account: turn it on first")
            target = active
        if not await self.store.send_skipped(account_id, delivery.id, target, self.clock()):
            raise NothingToSend(f"delivery {delivery.id} could not be sent again (it already went to {target})")
        self.dispatcher.wake()
        return target

    async def _check_bulk_send(self, account_id: str, delivery: Delivery) -> None:
        if delivery.event_type == "notification":
            raise NothingToSend(f"delivery {delivery.id} is a vendor's routine notice: send it by itself if needed")
        account = await self.account(account_id)
        record = await self.store.get_event(account_id, delivery.event_seq)
        if account is None or record is None:
            return
        target = delivery.plugin
        role = rules.role_of_target(target) or (self.plugins.role(target) if self.plugins.has(target) else None)
        if role != "accounting":
            return
        books = await self.active_plugin(account_id, "accounting") if rules.role_of_target(target) else target
        if books is None:
            return
        created = decode_event(record.payload).object_created_at
        start = rules.sync_start(account, await self.store.get_plugin_state(account_id, books))
        if created is not None and start is not None and created.timestamp() < start:
            raise NothingToSend(
                f"delivery {delivery.id} is a document created {rules.day(created.timestamp())}, before the sync"
                " start: set a backfill date, or send it by itself"
            )

    def forget_account(self, account_id: str) -> None:
        self._enabled.forget(account_id)
        self._accounts.forget(account_id)
        self._bindings.forget()
        self.config_versions.bump(account_id)

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
        route = rules.route(self.plugins, await self.enabled_plugins(account_id), source, event)
        return await self.intake.publish(
            new_event(account_id, source, external_id, event, route.consumers, skipped=route.skipped)
        )

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
