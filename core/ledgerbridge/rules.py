"""The product's rules, written once for every backend: who receives an event, and what the account skips.

- **Routing by role.** An event type names the role it goes to (`ledgerbridge.events`): a payment to the
  account's one accounting plugin, a customer change to its CRM plugin. Observers get what they subscribe to.
  When no plugin of the role is on, the event is kept as a skipped delivery to `@role`, with the reason, so
  the user can send it once a plugin is on.
- **The sync start.** An accounting plugin books only documents created at or after the account's sync start:
  its first connection (or first enablement, for a plugin with no connection), or the account's opt-in
  backfill date when earlier. Older ones are skipped with that reason, and can be sent on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledgerbridge import events
from ledgerbridge.events import Role
from ledgerbridge.models import Event
from ledgerbridge.plugins import PluginManager
from ledgerbridge.store import Account, PluginState

ROLE_PREFIX = "@"


@dataclass(frozen=True)
class Route:
    consumers: frozenset[str]
    skipped: tuple[tuple[str, str], ...] = ()


def role_target(role: Role) -> str:
    """The stand-in recipient of an event whose role has no plugin on for the account."""
    return ROLE_PREFIX + role


def role_of_target(target: str) -> Role | None:
    """The role a stand-in recipient names (`@accounting`), or None for a plugin's name."""
    if not target.startswith(ROLE_PREFIX):
        return None
    return next((role for role in events.ROLES if role == target.removeprefix(ROLE_PREFIX)), None)


ROLE_WORDS = {"accounting": "books (accounting)", "crm": "CRM"}


def active_plugin(plugins: PluginManager, enabled: frozenset[str], role: Role) -> str | None:
    """The account's plugin for a role: the one enabled plugin of that role (at most one is, by rule)."""
    return next((name for name in plugins.with_role(role) if name in enabled), None)


def route(plugins: PluginManager, enabled: frozenset[str], source: str, event: Event) -> Route:
    """Where an event published by `source` goes in an account whose enabled plugins are `enabled`."""
    definition = events.definition_of(event)
    if source not in enabled:
        return Route(frozenset())
    if definition.name == "notification":
        return Route(frozenset({source}) if plugins.consumes(source, definition.name) else frozenset())
    consumers: set[str] = set()
    skipped: list[tuple[str, str]] = []
    if definition.route is not None:
        target = active_plugin(plugins, enabled - {source}, definition.route)
        if target is None:
            skipped.append((role_target(definition.route), no_plugin_reason(plugins, definition.route, source)))
        elif plugins.consumes(target, definition.name):
            consumers.add(target)
    for name in enabled - {source}:
        if not plugins.has(name):  # on for the account, but no longer installed
            continue
        if definition.name in plugins.subscriptions(name) and plugins.consumes(name, definition.name):
            consumers.add(name)
    return Route(frozenset(consumers), tuple(skipped))


def no_plugin_reason(plugins: PluginManager, role: Role, source: str | None = None) -> str:
    installed = [name for name in plugins.with_role(role) if name != source]
    if installed:
        return f"no {ROLE_WORDS[role]} plugin is on for this account ({', '.join(installed)} is off)"
    return f"no {ROLE_WORDS[role]} plugin is installed"


def sync_start(account: Account, state: PluginState) -> float | None:
    """From when an accounting plugin books this account's documents; None while it has never connected."""
    if state.connected_at is None:
        return None
    if account.backfill_since is not None:
        return min(account.backfill_since, state.connected_at)
    return state.connected_at


def skip_reason(
    plugins: PluginManager, enabled: frozenset[str], account: Account, state: PluginState, event: Event
) -> str | None:
    """Why the account's rules skip delivering `event` to `state.plugin` now; None when it goes ahead."""
    plugin = state.plugin
    if not plugins.has(plugin):
        return f"{plugin} is not installed on this server"
    if plugin not in enabled:
        return f"{plugin} is off for this account"
    created = event.object_created_at
    if plugins.role(plugin) != "accounting" or created is None:
        return None
    start = sync_start(account, state)
    if start is None:
        return f"{plugin} is not connected yet: connect it, then send this event"
    if created.timestamp() < start:
        return f"created {day(created.timestamp())}, before the sync start ({day(start)})"
    return None


def day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
