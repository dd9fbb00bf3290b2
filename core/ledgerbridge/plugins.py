"""Plugin discovery and a typed, async-aware facade over pluggy.

pluggy knows nothing of asyncio: `firstresult` would return a coroutine and one raising implementation
aborts a whole call. So the facade calls implementations one plugin at a time, awaits coroutines, and keeps
each plugin's failure to itself. Core code calls `await plugins.card(name, ctx)`, never `pm.hook.x(**kw)`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

from ledgerbridge import hookspecs
from ledgerbridge.cards import IntegrationCard
from ledgerbridge.hookspecs import EVENT_HOOKS, PROJECT_NAME
from ledgerbridge.models import Event
from ledgerbridge.sandboxes import SandboxSpec
from ledgerbridge.tasks import BackgroundTask

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext

ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_ENV = "LEDGERBRIDGE_LOAD_PLUGINS"
BLOCK_ENV = "LEDGERBRIDGE_BLOCK_PLUGINS"


class PluginError(Exception):
    """A plugin could not be loaded or does not fit the hook specs."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]


def _names_from_env(variable: str) -> frozenset[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())


class PluginManager:
    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._versions: dict[str, tuple[str | None, str | None]] = {}

    @classmethod
    def discover(
        cls,
        *,
        allow: Collection[str] | None = None,
        block: Collection[str] | None = None,
        plugins_dir: Path | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> PluginManager:
        """Load plugins from entry points, an optional directory of modules, and `extra` objects.

        `allow` (default: $LEDGERBRIDGE_LOAD_PLUGINS, comma-separated) loads only the named plugins;
        `block` (default: $LEDGERBRIDGE_BLOCK_PLUGINS) never loads the named ones.
        """
        allowed = frozenset(allow) if allow is not None else _names_from_env(LOAD_ENV)
        blocked = frozenset(block) if block is not None else (_names_from_env(BLOCK_ENV) or frozenset())

        def wanted(name: str) -> bool:
            return name not in blocked and (allowed is None or name in allowed)

        manager = cls()
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if not wanted(entry_point.name) or manager.has(entry_point.name):
                continue
            try:
                module = entry_point.load()
            except Exception as exc:
                raise PluginError(f"plugin {entry_point.name!r} failed to load: {exc}") from exc
            dist = entry_point.dist
            manager.register(
                module,
                entry_point.name,
                version=dist.version if dist else None,
                distribution=dist.metadata["Name"] if dist else None,
            )
        if plugins_dir is not None:
            for name, module in _modules_in(plugins_dir):
                if wanted(name):
                    manager.register(module, name, distribution=str(plugins_dir))
        for name, plugin in (extra or {}).items():
            if wanted(name):
                manager.register(plugin, name)
        manager.check_pending()
        return manager

    def register(
        self, plugin: object, name: str, *, version: str | None = None, distribution: str | None = None
    ) -> None:
        if self.has(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        self._pm.register(plugin, name=name)
        self._versions[name] = (version, distribution)

    def check_pending(self) -> None:
        """Fail on hook implementations that match no spec (a misspelled hook name)."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc

    def has(self, name: str) -> bool:
        return self._pm.get_plugin(name) is not None

    def names(self) -> list[str]:
        return sorted(name for name, _ in self._pm.list_name_plugin())

    def info(self) -> list[PluginInfo]:
        infos = []
        for name in self.names():
            version, distribution = self._versions.get(name, (None, None))
            hooks = tuple(h for h in hookspecs.hook_names() if self.implements(name, h))
            infos.append(PluginInfo(name=name, version=version, distribution=distribution, hooks=hooks))
        return infos

    def implements(self, plugin: str, hook: str) -> bool:
        return self._impl(plugin, hook) is not None

    def implementers(self, hook: str) -> list[str]:
        caller = getattr(self._pm.hook, hook)
        return sorted({impl.plugin_name for impl in caller.get_hookimpls()})

    def _impl(self, plugin: str, hook: str) -> pluggy.HookImpl | None:
        caller = getattr(self._pm.hook, hook, None)
        if caller is None:
            raise PluginError(f"no hook named {hook!r}")
        impl: pluggy.HookImpl
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin:
                return impl
        return None

    def call_sync(self, plugin: str, hook: str, /, **kwargs: Any) -> Any:
        impl = self._impl(plugin, hook)
        if impl is None:
            return None
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        if inspect.isawaitable(result):
            raise PluginError(f"{plugin}.{hook} must not be async")
        return result

    async def call(self, plugin: str, hook: str, /, **kwargs: Any) -> Any:
        """Call one plugin's implementation of `hook`, awaiting it when it is async; None if it has none."""
        impl = self._impl(plugin, hook)
        if impl is None:
            return None
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        if inspect.isawaitable(result):
            result = await result
        return result

    async def call_each(self, hook: str, plugins: Iterable[str], /, **kwargs: Any) -> dict[str, Any]:
        """Call `hook` on each named plugin concurrently; a raised exception becomes that plugin's result."""
        names = [p for p in plugins if self.implements(p, hook)]
        results = await asyncio.gather(*(self.call(p, hook, **kwargs) for p in names), return_exceptions=True)
        return dict(zip(names, results, strict=True))

    # The typed facade: one method per hook.

    async def deliver(self, plugin: str, ctx: DeliveryContext, event: Event) -> None:
        hook = EVENT_HOOKS[ctx.event_type]
        argument = {
            "on_payment": "payment",
            "on_invoice_change": "change",
            "on_contact_sync": "sync",
            "on_first_invoice_paid": "event",
            "on_notification": "notification",
        }[hook]
        await self.call(plugin, hook, ctx=ctx, **{argument: event})

    def consumers(self, event_type: str) -> frozenset[str]:
        return frozenset(self.implementers(EVENT_HOOKS[event_type]))

    def routes(self, plugin: str, ctx: PluginContext) -> Sequence[BaseRoute]:
        return list(self.call_sync(plugin, "register_routes", plugin=ctx) or ())

    async def card(self, plugin: str, ctx: AccountContext) -> IntegrationCard | None:
        card = await self.call(plugin, "integration_card", ctx=ctx)
        if card is not None and not isinstance(card, IntegrationCard):
            raise PluginError(f"{plugin}.integration_card returned {type(card).__name__}, not IntegrationCard")
        return card

    def settings_schema(self, plugin: str) -> type[msgspec.Struct] | None:
        schema = self.call_sync(plugin, "settings_schema")
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
            raise PluginError(f"{plugin}.settings_schema must return a msgspec.Struct type")
        return schema

    def background_tasks(self, plugin: str, ctx: PluginContext) -> list[BackgroundTask]:
        tasks = list(self.call_sync(plugin, "background_tasks", plugin=ctx) or ())
        for task in tasks:
            if not isinstance(task, BackgroundTask):
                raise PluginError(f"{plugin}.background_tasks returned {type(task).__name__}")
        return tasks

    def sandboxes(self) -> dict[str, SandboxSpec]:
        found: dict[str, SandboxSpec] = {}
        for plugin in self.implementers("register_sandboxes"):
            for spec in self.call_sync(plugin, "register_sandboxes") or ():
                if not isinstance(spec, SandboxSpec):
                    raise PluginError(f"{plugin}.register_sandboxes returned {type(spec).__name__}")
                found[spec.name] = spec
        return found


def _modules_in(directory: Path) -> list[tuple[str, ModuleType]]:
    modules = []
    for path in sorted(directory.glob("*.py")):
        module_name = f"ledgerbridge_plugins_dir.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot load a plugin from {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginError(f"plugin file {path} failed to load: {exc}") from exc
        modules.append((path.stem, module))
    return modules
