"""Command-line options for running the sandbox (wired into `ledgerbridge` by the CLI)."""

from __future__ import annotations

import argparse
import os

from ledgerbridge_crmconnect.sandbox.config import LocationSeed, OAuthAppSeed, SandboxConfig

DEFAULT_LOCATION = LocationSeed(id="sandboxLocation00001", name="Sandbox Location", token="sandbox-pit-token")
DEFAULT_APP = OAuthAppSeed(client_id="sandbox-client", client_secret="sandbox-secret")
STATE_FILE = "state.json"


def _location(value: str) -> LocationSeed:
    location_id, sep, token = value.partition(":")
    if not sep or not location_id or not token:
        raise argparse.ArgumentTypeError("expected ID:TOKEN")
    return LocationSeed(id=location_id, name=f"Location {location_id}", token=token)


def _rate(value: str) -> tuple[int, float]:
    """'100' or '100/10' (requests per seconds)."""
    count, _, seconds = value.partition("/")
    try:
        return int(count), float(seconds or 10)
    except ValueError:
        raise argparse.ArgumentTypeError("expected N or N/SECONDS") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CRM Connect sandbox")
    group.add_argument("--webhook-url", default=None, help="where the sandbox POSTs signed webhooks")
    group.add_argument(
        "--location",
        action="append",
        type=_location,
        default=None,
        metavar="ID:TOKEN",
        help="a sub-account and its Private Integration Token (repeatable)",
    )
    group.add_argument(
        "--rate-limit",
        type=_rate,
        default=(100, 10.0),
        metavar="N[/SECONDS]",
        help="burst limit per app per location (default 100/10)",
    )
    group.add_argument("--time-scale", type=float, default=1.0, help="divide waits (webhook retries, windows)")
    group.add_argument("--state-file", default=None, help="persist sandbox data to this JSON file")
    group.add_argument("--keys-dir", default=None, help="persist the webhook signing keys here")
    group.add_argument(
        "--state-dir",
        default=None,
        help="keep data (state.json) and signing keys in this folder across restarts",
    )


def config_from_args(args: argparse.Namespace, base_url: str) -> SandboxConfig:
    requests, seconds = args.rate_limit
    return SandboxConfig(
        base_url=base_url,
        webhook_url=args.webhook_url,
        rate_limit_requests=requests,
        rate_limit_interval_seconds=seconds,
        time_scale=args.time_scale,
        locations=list(args.location or [DEFAULT_LOCATION]),
        oauth_apps=[DEFAULT_APP],
        webhook_keys_dir=args.keys_dir or getattr(args, "state_dir", None),
        state_file=args.state_file or _in_folder(getattr(args, "state_dir", None)),
    )


def startup_banner(config: SandboxConfig, public_keys: dict[str, str]) -> str:
    """What `ledgerbridge serve` prints: where it is, the tokens, and the keys receivers verify with."""
    lines = [f"CRM Connect sandbox at {config.base_url}"]
    lines += [f"  location {loc.id} token {loc.token}" for loc in config.locations]
    lines += [f"  oauth app {app.client_id} / {app.client_secret}" for app in config.oauth_apps]
    lines.append("  x-wh-signature public key (RSA):\n" + public_keys["x-wh-signature"])
    lines.append("  x-ghl-signature public key (Ed25519):\n" + public_keys["x-ghl-signature"])
    return "\n".join(lines)


def _in_folder(folder: str | None) -> str | None:
    return os.path.join(folder, STATE_FILE) if folder else None
