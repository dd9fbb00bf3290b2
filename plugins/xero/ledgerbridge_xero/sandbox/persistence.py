"""The sandbox's books and identity saved as JSON (money tagged as decimal strings), so a restarted sandbox
still knows its organisations, connections and tokens."""

from __future__ import annotations

import dataclasses
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from .books import Organisation
from .engine import Sandbox
from .identity import Connection, Session

DECIMAL = "$decimal"


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {DECIMAL: str(value)}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {DECIMAL}:
            return Decimal(value[DECIMAL])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save(sandbox: Sandbox, path: str) -> None:
    state = {
        "organisations": [o.dump() for o in sandbox.organisations.values()],
        "sessions": [dataclasses.asdict(s) for s in sandbox.identity.sessions],
        "connections": [dataclasses.asdict(c) for c in sandbox.identity.connections.values()],
        "webhooks": {
            cid: {"status": s.status, "sequence": s.sequence} for cid, s in sandbox.dispatcher.subscriptions.items()
        },
    }
    target = Path(path)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(json.dumps(_encode(state)))
    os.replace(temporary, target)  # a crash mid-write never leaves half a file


def load(sandbox: Sandbox, path: str) -> bool:
    target = Path(path)
    if not target.exists():
        return False
    state = _decode(json.loads(target.read_text()))
    sandbox.organisations = {o["tenant_id"]: Organisation.load(o, sandbox.clock) for o in state["organisations"]}
    sandbox.identity.sessions = [Session(**s) for s in state["sessions"]]
    sandbox.identity.connections = {c["id"]: Connection(**c) for c in state["connections"]}
    for client_id, saved in state.get("webhooks", {}).items():
        subscription = sandbox.dispatcher.subscriptions.get(client_id)
        if subscription is not None:
            subscription.status, subscription.sequence = saved["status"], saved["sequence"]
    return True
