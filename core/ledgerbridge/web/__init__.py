"""HTTP helpers for plugin routes, and the server's app factory."""

from ledgerbridge.web.bodies import decode_json, parse_json, read_body, read_json
from ledgerbridge.web.errors import ApiError, json_error

__all__ = ["ApiError", "decode_json", "json_error", "parse_json", "read_body", "read_json"]
