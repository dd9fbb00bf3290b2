"""The Jinja environment of the sandbox's HTML pages (templates/, autoescaped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledgerbridge_crmconnect.sandbox.views import when

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
TEMPLATES.filters["when"] = when


def render(template: str, **context: Any) -> str:
    return TEMPLATES.get_template(template).render(**context)
