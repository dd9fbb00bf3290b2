"""What a plugin shows on its integration card (Settings › Integrations).

A card is data, not HTML: the web UI and the admin API render the same card. Actions are links or forms
that point at the plugin's own routes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

CardStatus = Literal["connected", "not_connected", "reconnect_needed", "error", "ready"]


class CardField(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    label: str
    value: str
    #: a moment (epoch seconds): the UI says it as a relative time ("2 min ago") with the exact time on hover;
    #: `value` stays its text for the admin API and the CLI
    at: float | None = None


class CardAction(msgspec.Struct, frozen=True, kw_only=True):
    """A button: `method` GET is a link (e.g. QB Connect), POST a form submission to `url`."""

    label: str
    url: str
    method: Literal["GET", "POST"] = "POST"
    style: Literal["primary", "secondary", "danger"] = "secondary"
    #: a POST that cannot be undone asks first: this question, on a page of its own (e.g. Disconnect)
    confirm: str | None = None


class CardToggle(msgspec.Struct, frozen=True, kw_only=True):
    """An on/off switch bound to a boolean field of the plugin's settings schema."""

    label: str
    setting: str
    value: bool
    help: str | None = None


class CardProgress(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    done: int
    total: int | None = None


class IntegrationCard(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    status: CardStatus
    summary: str = ""
    fields: tuple[CardField, ...] = ()
    actions: tuple[CardAction, ...] = ()
    toggles: tuple[CardToggle, ...] = ()
    progress: CardProgress | None = None
