"""Command-line options of the sandbox, for `ledgerbridge sandbox xero` and `serve`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import AppRegistration, SandboxConfig

STATE_FILE = "state.json"


def _in_folder(folder: str | None) -> str | None:
    return str(Path(folder) / STATE_FILE) if folder else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Xero sandbox")
    group.add_argument("--xero-client-id", dest="xero_client_id", default=None)
    group.add_argument("--xero-client-secret", dest="xero_client_secret", default=None)
    group.add_argument("--xero-redirect-uri", dest="xero_redirect_uri", action="append", default=None)
    group.add_argument("--xero-webhook-url", dest="xero_webhook_url", default=None)
    group.add_argument("--xero-webhook-key", dest="xero_webhook_key", default="sandbox-webhook-key")
    group.add_argument("--xero-calls-per-minute", dest="xero_calls_per_minute", type=int, default=60)
    group.add_argument("--xero-calls-per-day", dest="xero_calls_per_day", type=int, default=5000)
    group.add_argument("--xero-concurrent-calls", dest="xero_concurrent_calls", type=int, default=5)
    group.add_argument("--xero-state-file", dest="xero_state_file", default=None, help="keep the books across restarts")
    group.add_argument(
        "--xero-state-dir", dest="xero_state_dir", default=None, help=f"keep the books ({STATE_FILE}) in this folder"
    )


def config_from_args(args: argparse.Namespace, base_url: str) -> SandboxConfig:
    apps = []
    client_id = getattr(args, "xero_client_id", None)
    if client_id:
        secret = getattr(args, "xero_client_secret", None)
        if not secret:
            raise SystemExit("--xero-client-id needs --xero-client-secret")
        apps.append(
            AppRegistration(
                client_id=client_id,
                client_secret=secret,
                redirect_uris=list(args.xero_redirect_uri or []),
                webhook_url=args.xero_webhook_url,
                webhook_key=args.xero_webhook_key,
            )
        )
    return SandboxConfig(
        base_url=base_url.rstrip("/"),
        apps=apps,
        calls_per_minute=getattr(args, "xero_calls_per_minute", 60),
        calls_per_day=getattr(args, "xero_calls_per_day", 5000),
        concurrent_calls=getattr(args, "xero_concurrent_calls", 5),
        state_file=getattr(args, "xero_state_file", None) or _in_folder(getattr(args, "xero_state_dir", None)),
    )
