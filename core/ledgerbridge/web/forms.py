"""Admin-only POST routes of plugins: who may call them and what they sent.

An API client authenticates with the admin bearer token and sends JSON; a signed-in browser submits a
card's form, which carries the session's CSRF token. `admin_submission` accepts both and refuses the rest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from ledgerbridge.web.auth import require_admin
from ledgerbridge.web.bodies import parse_json, read_body
from ledgerbridge.web.errors import ApiError

FORM_TYPE = "application/x-www-form-urlencoded"


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE


async def admin_submission(request: Request) -> dict[str, Any]:
    """The fields of an admin's POST: a JSON object (bearer API calls) or a form checked for CSRF."""
    require_admin(request)
    raw = await read_body(request)
    if is_form(request):
        from ledgerbridge.ui.session import CSRF_FIELD, check_csrf_token

        fields = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        check_csrf_token(request, fields.pop(CSRF_FIELD, None))
        return fields
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    return body
