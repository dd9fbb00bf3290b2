"""A plugin's settings form, generated from its msgspec settings schema.

A field is shown when it is annotated with a title — `Annotated[str, Meta(title="Deposit account",
description="Where the money lands")]` — so internal settings stay out of the card. Its input follows its
type: a Literal is a choice, a bool a checkbox, an int or float a number (with the schema's bounds), anything
else text (with the schema's maximum length). What the user typed is checked against the schema as a whole
(the same strict decode as the admin API); a refusal names the field in the schema's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi
from starlette.datastructures import FormData

InputKind = Literal["text", "number", "select", "checkbox"]
MAX_TEXT = 2000


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    help: str | None
    kind: InputKind
    choices: tuple[str, ...] = ()
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class FieldView:
    spec: FieldSpec
    value: str
    checked: bool = False
    error: str | None = None


@dataclass
class FormErrors(Exception):
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _unwrap(info: mi.Type) -> tuple[mi.Type, dict[str, Any]]:
    extra: dict[str, Any] = {}
    while isinstance(info, mi.Metadata):
        extra.update(info.extra_json_schema or {})
        info = info.type
    return info, extra


def form_specs(schema: type[msgspec.Struct] | None) -> tuple[FieldSpec, ...]:
    """The fields of a settings schema that carry a title, in the schema's order."""
    if schema is None:
        return ()
    struct = mi.type_info(schema)
    if not isinstance(struct, mi.StructType):
        return ()
    specs = []
    for item in struct.fields:
        info, extra = _unwrap(item.type)
        title = extra.get("title")
        if not isinstance(title, str):
            continue
        help_text = extra.get("description") if isinstance(extra.get("description"), str) else None
        if isinstance(info, mi.LiteralType):
            spec = FieldSpec(item.name, title, help_text, "select", tuple(str(v) for v in info.values))
        elif isinstance(info, mi.BoolType):
            spec = FieldSpec(item.name, title, help_text, "checkbox")
        elif isinstance(info, mi.IntType | mi.FloatType):
            low = info.ge if info.ge is not None else info.gt
            high = info.le if info.le is not None else info.lt
            spec = FieldSpec(item.name, title, help_text, "number", integer=isinstance(info, mi.IntType),
                             minimum=low, maximum=high)  # fmt: skip
        elif isinstance(info, mi.StrType):
            spec = FieldSpec(item.name, title, help_text, "text", max_length=info.max_length)
        else:
            continue  # lists, nested structs: the admin API's business
        specs.append(spec)
    return tuple(specs)


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def field_views(
    specs: tuple[FieldSpec, ...],
    settings: dict[str, Any],
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> tuple[FieldView, ...]:
    views = []
    for spec in specs:
        value = typed[spec.name] if typed and spec.name in typed else _shown(settings.get(spec.name))
        checked = value in ("true", "True", "on") if typed and spec.name in typed else bool(settings.get(spec.name))
        views.append(FieldView(spec, value, checked, (errors or {}).get(spec.name)))
    return tuple(views)


def parse(specs: tuple[FieldSpec, ...], form: FormData) -> dict[str, Any]:
    """The form's values as the schema's types; FormErrors (per field, in plain words) when one cannot be."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    for spec in specs:
        raw = form.get(spec.name)
        text = raw.strip() if isinstance(raw, str) else ""
        typed[spec.name] = "true" if spec.kind == "checkbox" and text else text[:MAX_TEXT]
        if spec.kind == "checkbox":
            changes[spec.name] = bool(text)
        elif spec.kind == "select":
            if text not in spec.choices:
                errors[spec.name] = f"Choose one of: {', '.join(spec.choices)}."
            changes[spec.name] = text
        elif spec.kind == "number":
            try:
                number: float | int = int(text) if spec.integer else float(text)
            except ValueError:
                errors[spec.name] = "Enter a whole number." if spec.integer else "Enter a number."
                continue
            changes[spec.name] = number
        else:
            if len(text) > MAX_TEXT:
                errors[spec.name] = f"At most {spec.max_length or MAX_TEXT} characters."
            changes[spec.name] = text
    if errors:
        raise FormErrors(errors, typed)
    return changes


_PATH = re.compile(r"- at `\$\.(\w+)")
_BOUNDS = [
    (re.compile(r">= ([\d.]+)"), "Must be at least {0}."),
    (re.compile(r"> ([\d.]+)"), "Must be more than {0}."),
    (re.compile(r"<= ([\d.]+)"), "Must be at most {0}."),
    (re.compile(r"< ([\d.]+)"), "Must be less than {0}."),
    (re.compile(r"length <= (\d+)"), "At most {0} characters."),
    (re.compile(r"length >= (\d+)"), "At least {0} characters."),
]


def field_error(message: str, specs: tuple[FieldSpec, ...]) -> tuple[str | None, str]:
    """A schema's refusal ("Expected `float` >= 60.0 - at `$.poll_interval_seconds`") as (field, words)."""
    found = _PATH.search(message)
    name = found.group(1) if found else None
    if name not in {spec.name for spec in specs}:
        return None, message
    for pattern, words in sorted(_BOUNDS, key=lambda b: "length" not in b[0].pattern):
        match = pattern.search(message)
        if match:
            return name, words.format(_shown(float(match.group(1))))
    return name, message.split(" - at ")[0].replace("Expected", "Expected a value like").strip() + "."
