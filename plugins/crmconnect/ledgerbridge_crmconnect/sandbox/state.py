"""The sandbox's in-memory data, with optional persistence to a JSON file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

Record = dict[str, Any]


@dataclass
class SandboxState:
    """Everything the emulated CRM knows; each store maps id -> record (records hold Decimals for money)."""

    locations: dict[str, Record] = field(default_factory=dict)
    pit_tokens: dict[str, str] = field(default_factory=dict)  # token -> location id
    access_tokens: dict[str, Record] = field(default_factory=dict)
    refresh_tokens: dict[str, Record] = field(default_factory=dict)
    auth_codes: dict[str, Record] = field(default_factory=dict)
    contacts: dict[str, Record] = field(default_factory=dict)
    invoices: dict[str, Record] = field(default_factory=dict)
    products: dict[str, Record] = field(default_factory=dict)
    orders: dict[str, Record] = field(default_factory=dict)
    transactions: dict[str, Record] = field(default_factory=dict)
    subscriptions: dict[str, Record] = field(default_factory=dict)
    messages: dict[str, Record] = field(default_factory=dict)
    workflow_enrolments: list[Record] = field(default_factory=list)
    invoice_counters: dict[str, int] = field(default_factory=dict)  # location id -> last invoice number

    def in_location(self, store: dict[str, Record], location_id: str) -> list[Record]:
        """Records of one location, oldest first (every lookup is scoped by location)."""
        return [r for r in store.values() if r.get("locationId") == location_id]

    def next_invoice_number(self, location_id: str) -> int:
        self.invoice_counters[location_id] = self.invoice_counters.get(location_id, 1000) + 1
        return self.invoice_counters[location_id]

    def to_json(self) -> str:
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, default=_encode)

    @classmethod
    def from_json(cls, text: str) -> SandboxState:
        data = json.loads(text, object_hook=_decode)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str) -> None:
        """Write atomically so a crash never leaves half a file."""
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".crmconnect-sandbox-")
        with os.fdopen(fd, "w") as handle:
            handle.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> SandboxState:
        with open(path) as handle:
            return cls.from_json(handle.read())


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"cannot persist {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$decimal" in obj:
        return Decimal(obj["$decimal"])
    return obj
