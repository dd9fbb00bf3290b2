"""Which URLs the server may send credentials to: a guard against server-side request forgery.

A URL a user can configure (a CRM API base URL, say) must be https to a public address; plain http is
allowed only to a loopback address for a sandbox. Never private networks, link-local addresses (the cloud
metadata service at 169.254.169.254 among them), unspecified, multicast or reserved ones, never userinfo,
never another scheme. A name is resolved when the URL is configured and again before each request
(`OutboundGuard`), so a name that later points somewhere forbidden is refused at that request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A URL the server refuses to call, with the reason in plain words."""


class UnresolvableHost(UnsafeUrl):
    """The host has no address right now (DNS down, a typo): not forbidden, just unreachable."""


def _forbidden(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    if address.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "an unroutable address"
    if address.is_private and not address.is_loopback:
        return "a private network address"
    return None


def check_url(url: str, *, allow_loopback: bool) -> str:
    """The URL without a trailing slash, or `UnsafeUrl` saying why not (no name resolution here)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (an out-of-range port raises here)
    except ValueError as exc:
        raise UnsafeUrl(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl(f"only https URLs are allowed, not {parts.scheme or 'a URL without a scheme'!r}")
    if not host:
        raise UnsafeUrl(f"{url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("a URL with a user name or password in it is not allowed")
    if parts.query or parts.fragment:
        raise UnsafeUrl("an API base URL has no query or fragment")
    if host in METADATA_NAMES:
        raise UnsafeUrl(f"{host} is a cloud metadata service")
    loopback = host in LOOPBACK_NAMES
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        reason = _forbidden(address)
        if reason:
            raise UnsafeUrl(f"{host} is {reason}")
        loopback = address.is_loopback
    if loopback and not allow_loopback:
        raise UnsafeUrl(f"{host} is this machine; only a sandbox may be reached there")
    if parts.scheme == "http" and not loopback:
        raise UnsafeUrl("only https URLs are allowed (plain http only for a sandbox on this machine)")
    return url.rstrip("/")


async def resolve_checked(url: str, *, allow_loopback: bool) -> list[Address]:
    """Check `url` and every address its host resolves to now; `UnsafeUrl` when any is forbidden."""
    check_url(url, allow_loopback=allow_loopback)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        literal = ipaddress.ip_address(host)
        return [literal]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnresolvableHost(f"{host} cannot be resolved: {exc}") from None
    addresses: list[Address] = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if address.is_loopback and host not in LOOPBACK_NAMES:
            raise UnsafeUrl(f"{host} resolves to this machine ({address})")
        reason = _forbidden(address)
        if reason:
            raise UnsafeUrl(f"{host} resolves to {address}, {reason}")
    return addresses


class OutboundGuard:
    """An httpx request hook: every request's URL is checked (and its name resolved, cached briefly)."""

    def __init__(self, *, allow_loopback: bool, cache_seconds: float = 30.0) -> None:
        self.allow_loopback = allow_loopback
        self.cache_seconds = cache_seconds
        self._checked: dict[tuple[str, str, int | None], float] = {}

    async def __call__(self, request: httpx.Request) -> None:
        url = request.url
        key = (url.scheme, url.host, url.port)
        if self._checked.get(key, 0.0) > time.monotonic():
            return
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        try:
            await resolve_checked(origin, allow_loopback=self.allow_loopback)
        except UnsafeUrl as exc:
            raise httpx.ConnectError(f"refused to call {origin}: {exc}", request=request) from None
        self._checked[key] = time.monotonic() + self.cache_seconds
