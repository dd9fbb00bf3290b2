"""The event vocabulary: one registry from which each event's hook, delivery argument, route and sample derive.

An event type names its model (a tagged `Event` subclass), the hook that receives it and that hook's argument
name, and the role it is routed to: `"accounting"` (the account's books), `"crm"`, or None (only plugins that
subscribe to it explicitly, and for notifications only their producer). A third party adds an event type with
`register_event_type(...)` and a hook spec of its own (`PluginManager.add_hookspecs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, Union

import msgspec

from ledgerbridge import samples
from ledgerbridge.models import (
    ContactSync,
    Event,
    FirstInvoicePaid,
    InvoiceChange,
    InvoicePaid,
    Notification,
    Payment,
    event_type,
    event_type_of,
)

Role: TypeAlias = Literal["accounting", "crm"]
ROLES: tuple[Role, ...] = ("accounting", "crm")


@dataclass(frozen=True)
class EventType:
    name: str
    model: type[Event]
    hook: str
    argument: str
    route: Role | None
    sample: Callable[[], Event] | None = None

    def __post_init__(self) -> None:
        if event_type_of(self.model) != self.name:
            raise ValueError(f"{self.model.__name__} is tagged {event_type_of(self.model)!r}, not {self.name!r}")


_registry: dict[str, EventType] = {}
_decoder: msgspec.json.Decoder[Any] | None = None


def register_event_type(definition: EventType) -> None:
    """Add an event type; re-registering the same definition is harmless, a different one is an error."""
    global _decoder
    known = _registry.get(definition.name)
    if known is not None and known != definition:
        raise ValueError(f"an event type named {definition.name!r} is already registered")
    _registry[definition.name] = definition
    _decoder = None


def event_types() -> Mapping[str, EventType]:
    return dict(_registry)


def lookup(name: str) -> EventType:
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(f"no event type named {name!r}") from None


def definition_of(event: Event) -> EventType:
    return lookup(event_type(event))


def decode_event(data: bytes) -> Event:
    """An event as `encode_event` wrote it, of any registered type."""
    global _decoder
    if _decoder is None:
        models = tuple(definition.model for definition in _registry.values())
        union: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 (built at run time)
        _decoder = msgspec.json.Decoder(union)
    event: Event = _decoder.decode(data)
    return event


for _definition in (
    EventType("payment", Payment, "on_payment", "payment", "accounting", samples.sample_payment),
    EventType(
        "invoice_change", InvoiceChange, "on_invoice_change", "change", "accounting", samples.sample_invoice_change
    ),
    EventType("contact_sync", ContactSync, "on_contact_sync", "sync", "crm", samples.sample_contact_sync),
    EventType("invoice_paid", InvoicePaid, "on_invoice_paid", "fact", None, samples.sample_invoice_paid),
    EventType(
        "first_invoice_paid",
        FirstInvoicePaid,
        "on_first_invoice_paid",
        "event",
        "crm",
        samples.sample_first_invoice_paid,
    ),
    EventType("notification", Notification, "on_notification", "notification", None),
):
    register_event_type(_definition)
