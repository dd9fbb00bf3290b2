"""HTTP helpers for plugin routes, and the server's app factory."""

from ledgerbridge.web.auth import is_admin, require_admin
from ledgerbridge.web.bodies import decode_json, parse_json, read_body, read_json
from ledgerbridge.web.errors import ApiError, json_error
from ledgerbridge.web.forms import admin_submission, is_form
from ledgerbridge.web.pages import already_connected_page, connection_error_page, oauth_error_words
from ledgerbridge.web.redirects import local_path

__all__ = [
    "ApiError",
    "admin_submission",
    "already_connected_page",
    "connection_error_page",
    "decode_json",
    "is_admin",
    "is_form",
    "json_error",
    "local_path",
    "oauth_error_words",
    "parse_json",
    "read_body",
    "read_json",
    "require_admin",
]
