"""JSON bodies: the depth and surrogate checks answer the same whichever shortcut they take."""

from __future__ import annotations

import pytest
from ledgerbridge.web.bodies import DEFAULT_MAX_DEPTH, parse_json
from ledgerbridge.web.errors import ApiError


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_a_body_exactly_as_deep_as_allowed_is_accepted_and_one_level_more_refused() -> None:
    assert parse_json(nested(DEFAULT_MAX_DEPTH)) is not None
    with pytest.raises(ApiError, match="nested deeper"):
        parse_json(nested(DEFAULT_MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "{[" * 500
    assert parse_json(b'{"note": "' + text.encode() + b'"}') == {"note": text}


def test_an_escaped_surrogate_pair_is_text_and_half_of_one_is_refused() -> None:
    assert parse_json(b'{"name": "\\ud83d\\ude00"}') == {"name": "\U0001f600"}
    for raw in (b'{"name": "\\ud800", "x": 1}', b'{"name": "\\uDFFF"}', b'["\\udc00 and more"]'):
        with pytest.raises(ApiError):
            parse_json(raw)
