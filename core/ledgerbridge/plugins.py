"""Plugin discovery and a typed, async-aware facade over pluggy.

pluggy knows nothing of asyncio: `firstresult` would return a coroutine and one raising implementation
aborts a whole call. So the facade calls implementations one plugin at a time, awaits coroutines, and keeps
each plugin's failure to itself. Core code calls `await plugins.card(name, ctx)`, never `pm.hook.x(**kw)`.

A plugin may be a module, an object or a class. A class is built with its `PluginContext` when a server's
`Runtime` binds the manager (`bind`), so each server's state lives on its own instance; until then an
uninitialised stand-in answers the questions that need no state (its hooks, role, settings schema, sandboxes).
The core's own policies (review requests) are plugins too, registered by `discover` like datasette's defaults.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgspec
import pluggy

from ledgerbridge import events, hookspecs
from ledgerbridge.cards import IntegrationCard
from ledgerbridge.events import ROLES, Role
from ledgerbridge.hookspecs import PROJECT_NAME
from ledgerbridge.models import Event
from ledgerbridge.sandboxes import SandboxSpec
from ledgerbridge.tasks import BackgroundTask

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ledgerbridge.context import AccountContext, DeliveryContext, PluginContext

ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_ENV = "LEDGERBRIDGE_LOAD_PLUGINS"
BLOCK_ENV = "LEDGERBRIDGE_BLOCK_PLUGINS"
CORE_DISTRIBUTION = "ledgerbridge"
#: The core's own policies, registered like any plugin (and blockable like one).
CORE_PLUGINS: dict[str, str] = {"reviews": "ledgerbridge.reviews:ReviewRequests"}


class PluginError(Exception):
    """A plugin could not be loaded or does not fit the hook specs."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]
    role: Role | None = None
    core: bool = False


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
        self._classes: dict[str, type] = {}
        self._bound: set[str] = set()
        self._core: set[str] = set()

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
        manager.register_core_plugins(wanted)
        manager.check_pending()
        return manager

    def add_hookspecs(self, module_or_class: ModuleType | type) -> None:
        """Hook specs of a third party's own event types (see `ledgerbridge.events.register_event_type`)."""
        self._pm.add_hookspecs(module_or_class)

    def register_core_plugins(self, wanted: Callable[[str], bool] | None = None) -> None:
        """Register the core's own policies (review requests) unless blocked or already registered."""
        blocked = _names_from_env(BLOCK_ENV) or frozenset()
        for name, target in CORE_PLUGINS.items():
            allowed = wanted(name) if wanted is not None else name not in blocked
            if allowed and not self.has(name):
                module_name, _, attribute = target.partition(":")
                plugin = getattr(importlib.import_module(module_name), attribute)
                self.register(plugin, name, version=None, distribution=CORE_DISTRIBUTION)
                self._core.add(name)

    def register(
        self, plugin: object, name: str, *, version: str | None = None, distribution: str | None = None
    ) -> None:
        """Register a module, an object, or a class (built later with its PluginContext by `bind`)."""
        if self.has(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        if isinstance(plugin, type):
            self._classes[name] = plugin
            plugin = object.__new__(plugin)  # a stand-in until bind(): hooks and attributes, no state
        role = getattr(plugin, "role", None)
        if role is not None and role not in ROLES:
            raise PluginError(f"plugin {name!r} declares role {role!r}; roles are {', '.join(ROLES)} or none")
        self._pm.register(plugin, name=name)
        self._versions[name] = (version, distribution)

    def bind(self, context_for: Callable[[str], PluginContext]) -> None:
        """Build each class-based plugin with its context, replacing its stand-in (once per manager)."""
        for name, cls in self._classes.items():
            stand_in = self._pm.get_plugin(name)
            if stand_in is None or name in self._bound:
                continue
            instance = cls(context_for(name))
            self._pm.unregister(stand_in)
            self._pm.register(instance, name=name)
            self._bound.add(name)

    def plugin(self, name: str) -> object:
        found = self._pm.get_plugin(name)
        if found is None:
            raise PluginError(f"no plugin named {name!r}")
        return found

    # roles and routing facts

    def role(self, name: str) -> Role | None:
        role: Role | None = getattr(self.plugin(name), "role", None)
        return role

    def subscriptions(self, name: str) -> frozenset[str]:
        """The event types an observer asked for (`subscribes = ("invoice_paid", ...)`)."""
        return frozenset(getattr(self.plugin(name), "subscribes", ()) or ())

    def connects(self, name: str) -> bool:
        """True when the plugin connects to a vendor account (then its sync start is its first connection)."""
        return bool(getattr(self.plugin(name), "connects", False))

    def is_core(self, name: str) -> bool:
        return name in self._core

    def with_role(self, role: Role) -> list[str]:
        """Installed plugins of a role, the ones shipped with the core first."""
        names = [name for name in self.names() if self.role(name) == role]
        return sorted(names, key=lambda name: (self._versions.get(name, (None, None))[1] != CORE_DISTRIBUTION, name))

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
            infos.append(
                PluginInfo(
                    name=name,
                    version=version,
                    distribution=distribution,
                    hooks=hooks,
                    role=self.role(name),
                    core=self.is_core(name),
                )
            )
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
        definition = events.lookup(ctx.event_type)
        await self.call(plugin, definition.hook, ctx=ctx, **{definition.argument: event})

    def consumes(self, plugin: str, event_type: str) -> bool:
        return self.implements(plugin, events.lookup(event_type).hook)

    async def is_first_invoice(self, plugin: str, ctx: AccountContext, customer_id: str, invoice_id: str) -> bool:
        if not self.implements(plugin, "is_first_invoice"):
            raise PluginError(f"{plugin} cannot tell a customer's first invoice (no is_first_invoice hook)")
        return bool(
            await self.call(plugin, "is_first_invoice", ctx=ctx, customer_id=customer_id, invoice_id=invoice_id)
        )

    async def default_review_link(self, plugin: str, ctx: AccountContext) -> str | None:
        link = await self.call(plugin, "default_review_link", ctx=ctx)
        return str(link) if link else None

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
