"""Where the server may send a browser: paths on this server only, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(value: str | None, default: str = "/") -> str:
    """`value` when it is a path on this server; otherwise (`//host`, `/\\host`, a scheme, control characters,
    anything not starting with one `/`) `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return default  # browsers drop tabs and newlines, which can turn "/\t/host" into "//host"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
