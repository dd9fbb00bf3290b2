"""What a plugin sees of the core: its own slice of the store, the inbox, settings and the activity log.

`PluginContext` is the plugin's view of the whole server; `AccountContext` its view of one account;
`DeliveryContext` adds the delivery being processed. Everything is scoped: a plugin reads and writes only
its own links, cursors, secrets and settings, and only for the account at hand.
"""

from __future__ import annotations

import contextlib
import logging
import secrets as token_generator
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from ledgerbridge.cache import Versions
from ledgerbridge.locks import store_lock
from ledgerbridge.models import Event, Notification, encode_event, event_type
from ledgerbridge.outcomes import OUTCOME_KEY, Outcome
from ledgerbridge.secrets import SecretBox
from ledgerbridge.store import Account, Link, NewEvent, Nonce, PluginState, Store

if TYPE_CHECKING:
    from ledgerbridge.vendor.limiter import Limiter, Limiters

LogLevel = Literal["info", "warning", "error"]


class Core(Protocol):
    """What the contexts need of the running core; `ledgerbridge.runtime.Runtime` is the implementation."""

    store: Store
    secrets: SecretBox
    clock: Callable[[], float]
    config_versions: Versions

    @property
    def base_url(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...
    def sandbox_url(self, name: str) -> str | None: ...
    def plugin_context(self, name: str) -> PluginContext: ...
    def decode_settings(self, plugin: str, values: dict[str, Any]) -> Any: ...
    async def account(self, account_id: str) -> Account | None: ...
    async def enabled_plugins(self, account_id: str) -> frozenset[str]: ...
    async def account_id_for(self, plugin: str, external_id: str) -> str | None: ...
    async def bind_external_id(self, account_id: str, plugin: str, external_id: str | None) -> None: ...
    async def publish(self, account_id: str, source: str, external_id: str, event: Event) -> bool: ...
    async def pause(self, account_id: str, plugin: str, reason: str, *, observed_at: float | None = None) -> bool: ...
    async def resume(self, account_id: str, plugin: str) -> None: ...
    async def record_connection(self, account_id: str, plugin: str, at: float | None = None) -> float: ...
    async def sync_start(self, account_id: str) -> float | None: ...
    async def is_first_invoice(self, account_id: str, customer_id: str, invoice_id: str) -> bool: ...
    async def default_review_link(self, account_id: str) -> str | None: ...


class PluginContext:
    def __init__(self, core: Core, name: str) -> None:
        self._core = core
        self.name = name
        self.log = logging.getLogger(f"ledgerbridge.plugins.{name}")
        self._limiters: dict[str, Limiters[Limiter]] = {}

    @property
    def base_url(self) -> str:
        """This plugin's public URL prefix, where its routes are mounted."""
        return f"{self._core.base_url}/plugins/{self.name}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    @property
    def data_dir(self) -> Path:
        """A folder of this plugin's own under the server's data directory (created on first use)."""
        path = self._core.data_dir / "plugins" / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def server_url(self) -> str:
        return self._core.base_url

    def integrations_url(self, account_id: str) -> str:
        """The web UI's Settings › Integrations page of an account (where OAuth flows return to)."""
        return f"{self._core.base_url}/accounts/{account_id}/settings/integrations"

    def sandbox_url(self, sandbox: str) -> str | None:
        """The public URL of a sandbox mounted in this server, or None when it is not mounted."""
        return self._core.sandbox_url(sandbox)

    def now(self) -> float:
        return self._core.clock()

    def limiters(
        self,
        name: str,
        per_window: int,
        window_seconds: float,
        max_in_flight: int,
        *,
        local: Callable[[str], Limiter] | None = None,
        longest_hold: float = 5.0,
        time_scale: float = 1.0,
    ) -> Limiters[Limiter]:
        """A vendor's limits per company (`for_realm(key).slot()` around each request), kept under `name`:
        in the store when replicas share it, so all of them together stay within the limits, else in memory
        (`local(key)`, by default a `LocalLimiter` of these limits). The first call for a `name` fixes them.
        A vendor's hold longer than `longest_hold` seconds (scaled down by `time_scale` for a time-scaled
        sandbox) goes back to the durable queue instead of holding a worker."""
        from ledgerbridge.vendor.limiter import Limiters, LocalLimiter  # the kit builds on this module
        from ledgerbridge.vendor.shared_limiter import SharedLimiters

        if name not in self._limiters:
            if self._core.store.shared_by_replicas:
                shared = SharedLimiters(
                    self._core.store, per_window, window_seconds, max_in_flight, name=f"{self.name}:{name}",
                    longest_hold=longest_hold, time_scale=time_scale,
                )  # fmt: skip
                self._limiters[name] = shared  # type: ignore[assignment]
            else:
                self._limiters[name] = Limiters(
                    local or (lambda _key: LocalLimiter(per_window, window_seconds, max_in_flight))
                )
        return self._limiters[name]

    async def account(self, account_id: str) -> AccountContext | None:
        account = await self._core.account(account_id)
        return AccountContext(self._core, self.name, account) if account else None

    async def accounts(self, *, enabled_only: bool = True) -> list[AccountContext]:
        contexts = []
        for account in await self._core.store.list_accounts():
            if not enabled_only or self.name in await self._core.enabled_plugins(account.id):
                contexts.append(AccountContext(self._core, self.name, account))
        return contexts

    async def account_for_external_id(self, external_id: str) -> AccountContext | None:
        """The account bound to a vendor identity (an accounting company, a CRM location)."""
        account_id = await self._core.account_id_for(self.name, external_id)
        return await self.account(account_id) if account_id else None

    async def take_nonce(self, key: str) -> tuple[AccountContext, dict[str, Any]] | None:
        """Consume a one-time value made by this plugin's `AccountContext.create_nonce`; None if unknown, expired
        or another plugin's (which is left for its owner: a state shown to the wrong callback consumes nothing)."""
        nonce = await self._core.store.take_nonce(key, self.now(), plugin=self.name)
        if nonce is None or nonce.plugin != self.name:
            return None
        account = await self.account(nonce.account_id)
        return (account, nonce.data) if account else None


class AccountContext:
    def __init__(self, core: Core, plugin: str, account: Account) -> None:
        self._core = core
        self.plugin = plugin
        self.account = account
        self.plugin_context = core.plugin_context(plugin)

    @property
    def account_id(self) -> str:
        return self.account.id

    def now(self) -> float:
        return self._core.clock()

    # state and settings

    async def state(self) -> PluginState:
        return await self._core.store.get_plugin_state(self.account_id, self.plugin)

    @property
    def config_version(self) -> Hashable:
        """Changes whenever this account's settings, secrets, enablement or bindings change through this process
        (another process's changes are not seen here: a cache keyed on it should also expire within seconds)."""
        return self._core.config_versions.of(self.account_id)

    async def is_enabled(self) -> bool:
        return self.plugin in await self._core.enabled_plugins(self.account_id)

    async def settings(self) -> Any:
        """The account's settings as the plugin's `settings_schema` type (a dict when it has none)."""
        state = await self.state()
        return self._core.decode_settings(self.plugin, state.settings)

    async def update_settings(self, **changes: Any) -> Any:
        state = await self.state()
        merged = {**state.settings, **changes}
        settings = self._core.decode_settings(self.plugin, merged)
        await self._core.store.set_plugin_settings(self.account_id, self.plugin, msgspec.to_builtins(settings))
        self._core.config_versions.bump(self.account_id)
        return settings

    async def record_connection(self, at: float | None = None) -> float:
        """Tell the core this plugin connected to its vendor for the account (after OAuth, say).

        The first connection is the account's sync start for this plugin: the core skips documents created
        before it (the user may send them, or set a backfill date). Later calls keep the first; it is returned.
        """
        return await self._core.record_connection(self.account_id, self.plugin, at)

    async def sync_start(self) -> float | None:
        """From when the account's books take documents (epoch seconds): a producer need not fetch older ones."""
        return await self._core.sync_start(self.account_id)

    async def is_first_invoice(self, customer_id: str, invoice_id: str) -> bool:
        """Asks the account's accounting plugin: is this the customer's first invoice in the books?"""
        return await self._core.is_first_invoice(self.account_id, customer_id, invoice_id)

    async def default_review_link(self) -> str | None:
        """Asks the account's CRM plugin where customers leave reviews (None when it does not know)."""
        return await self._core.default_review_link(self.account_id)

    async def bind_external_id(self, external_id: str | None) -> None:
        """Bind a vendor identity to this account so `account_for_external_id` finds it (None unbinds)."""
        await self._core.bind_external_id(self.account_id, self.plugin, external_id)

    # publishing events

    async def publish(self, event: Event, *, external_id: str) -> bool:
        """Store an event durably before returning; True if new, False if `external_id` was seen before.

        `external_id` identifies the event at its source (a webhook id, a transaction id plus a version)
        and is what de-duplicates it.
        """
        return await self._core.publish(self.account_id, self.plugin, external_id, event)

    async def notify(self, kind: str, payload: Any, *, external_id: str, object_key: str) -> bool:
        """Store a raw vendor notification for this plugin's own `on_notification`."""
        event = Notification(kind=kind, payload=payload, object_key=object_key)
        return await self.publish(event, external_id=external_id)

    # links between this account's objects in two systems

    async def get_link(self, kind: str, local_id: str) -> Link | None:
        return await self._core.store.get_link(self.account_id, self.plugin, kind, local_id)

    async def find_link(self, kind: str, remote_id: str) -> Link | None:
        return await self._core.store.find_link(self.account_id, self.plugin, kind, remote_id)

    async def put_link(self, kind: str, local_id: str, remote_id: str, **data: Any) -> None:
        await self._core.store.put_link(self._link(kind, local_id, remote_id, data))

    async def put_links(self, kind: str, links: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """`(local_id, remote_id, data)` links of one kind, written in one transaction."""
        await self._core.store.put_links([self._link(kind, local, remote, data) for local, remote, data in links])

    async def claim_once(self, kind: str, key: str, **data: Any) -> bool:
        """True the first time `(kind, key)` is claimed for this account and plugin, False ever after."""
        return await self._core.store.claim_link(self._link(kind, key, key, data))

    async def delete_link(self, kind: str, local_id: str) -> None:
        await self._core.store.delete_link(self.account_id, self.plugin, kind, local_id)

    async def count_links(self, kind: str) -> int:
        return await self._core.store.count_links(self.account_id, self.plugin, kind)

    def _link(self, kind: str, local_id: str, remote_id: str, data: dict[str, Any]) -> Link:
        return Link(
            account_id=self.account_id, plugin=self.plugin, kind=kind, local_id=local_id, remote_id=remote_id, data=data
        )

    # checkpoints

    async def get_cursor(self, name: str) -> str | None:
        return await self._core.store.get_cursor(self.account_id, self.plugin, name)

    async def set_cursor(self, name: str, value: str | None) -> None:
        await self._core.store.set_cursor(self.account_id, self.plugin, name, value)

    # secrets, encrypted at rest

    async def get_secret(self, name: str) -> dict[str, Any] | None:
        sealed = await self._core.store.get_secret(self.account_id, self.plugin, name)
        return self._core.secrets.open(sealed) if sealed is not None else None

    async def put_secret(self, name: str, value: dict[str, Any]) -> None:
        await self._core.store.put_secret(self.account_id, self.plugin, name, self._core.secrets.seal(value))
        self._core.config_versions.bump(self.account_id)

    async def delete_secret(self, name: str) -> None:
        await self._core.store.delete_secret(self.account_id, self.plugin, name)
        self._core.config_versions.bump(self.account_id)

    # one-time values

    async def create_nonce(self, data: dict[str, Any] | None = None, *, ttl_seconds: float = 600) -> str:
        key = token_generator.token_urlsafe(24)
        nonce = Nonce(
            key=key,
            account_id=self.account_id,
            plugin=self.plugin,
            data=data or {},
            expires_at=self.now() + ttl_seconds,
        )
        await self._core.store.put_nonce(nonce)
        return key

    # a lock across processes (one token refresh however many servers share the store)

    def exclusive(
        self, name: str, *, hold_seconds: float = 60.0, wait_seconds: float = 60.0
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """`async with ctx.exclusive("refresh"):` runs in one task of one process at a time, for this account
        and plugin, in every process that shares the store."""
        return store_lock(self._core.store, f"{self.plugin}:{self.account_id}:{name}", hold_seconds, wait_seconds)

    # pausing deliveries while a connection needs the user

    async def pause(self, reason: str) -> None:
        await self._core.pause(self.account_id, self.plugin, reason)

    async def resume(self) -> None:
        await self._core.resume(self.account_id, self.plugin)

    # activity log

    async def log(self, message: str, *, level: LogLevel = "info", **data: Any) -> None:
        await self._core.store.log_activity(self.account_id, self.plugin, level, message, data, self.now())


class DeliveryContext(AccountContext):
    """The context of one delivery: an event handed to one plugin."""

    def __init__(
        self,
        core: Core,
        plugin: str,
        account: Account,
        *,
        delivery_id: int,
        attempt: int,
        event_type: str,
        event_external_id: str,
        source: str,
        received_at: float,
    ) -> None:
        super().__init__(core, plugin, account)
        self.delivery_id = delivery_id
        self.attempt = attempt
        self.event_type = event_type
        self.event_external_id = event_external_id
        self.source = source
        self.received_at = received_at

    @property
    def idempotency_key(self) -> str:
        """Stable across every repeat of this delivery: derive vendor request ids from it (`key-step`)."""
        return f"lb-{self.delivery_id}"

    async def record_outcome(self, outcome: Outcome, *, message: str | None = None) -> None:
        """Say what this delivery made or changed at the vendor; Activity shows it beside the event.

        Record it once the document exists (a repeated delivery may record it again: the newest is shown).
        """
        text = message or (f"{outcome.document}: {outcome.note}" if outcome.note else outcome.document)
        data = {"delivery_id": self.delivery_id, OUTCOME_KEY: msgspec.to_builtins(outcome)}
        await self._core.store.log_activity(self.account_id, self.plugin, "info", text, data, self.now())


def new_event(
    account_id: str,
    source: str,
    external_id: str,
    event: Event,
    consumers: frozenset[str],
    *,
    skipped: tuple[tuple[str, str], ...] = (),
) -> NewEvent:
    return NewEvent(
        account_id=account_id,
        source=source,
        external_id=external_id,
        type=event_type(event),
        object_key=event.object_key,
        payload=encode_event(event),
        consumers=tuple(sorted(consumers)),
        skipped=skipped,
    )
