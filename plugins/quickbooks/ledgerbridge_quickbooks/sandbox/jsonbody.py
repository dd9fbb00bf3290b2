"""Request bodies the sandbox can hold: JSON that parses without exhausting the stack and whose strings are
real text (a lone surrogate such as `"\\ud800"` parses in Python but cannot be stored or answered)."""

from __future__ import annotations

import json
from typing import Any


def loads(raw: bytes | str) -> Any:
    """`json.loads`, raising ValueError (never RecursionError) for anything the sandbox cannot keep."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError("the JSON body is nested too deeply") from None
    if _has_lone_surrogate(data):
        raise ValueError("the JSON body contains a lone UTF-16 surrogate (not text)")
    return data


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
