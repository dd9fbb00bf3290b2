"""Command-line options of the sandbox, for `ledgerbridge serve` and the CLI."""

from __future__ import annotations

import argparse
import os
from typing import Any, cast

from .config import AppRegistration, SandboxConfig, WebhookFormat

STATE_FILE = "state.json"
APP_OPTIONS = ("client_id", "client_secret", "redirect_uri", "verifier_token", "webhook_url", "webhook_format")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """App options repeat; the n-th --client-secret/--redirect-uri/… belongs to the n-th --client-id."""
    group = parser.add_argument_group("QuickBooks sandbox")
    for option in APP_OPTIONS:
        flag = "--" + option.replace("_", "-")
        kwargs: dict[str, Any] = {"action": "append", "dest": f"qbo_{option}", "default": None}
        if option == "webhook_format":
            kwargs["choices"] = ["legacy", "cloudevents"]
        group.add_argument(flag, **kwargs)
    group.add_argument("--requests-per-minute", dest="qbo_requests_per_minute", type=int, default=500)
    group.add_argument("--max-in-flight", dest="qbo_max_in_flight", type=int, default=10)
    group.add_argument("--time-scale", dest="qbo_time_scale", type=float, default=1.0)
    group.add_argument("--state-file", dest="qbo_state_file", default=None)
    group.add_argument(
        "--state-dir", dest="qbo_state_dir", default=None, help="keep the sandbox's state (state.json) in this folder"
    )
    group.add_argument("--requestid-ttl", dest="qbo_requestid_ttl", type=float, default=48 * 3600,
                       help="seconds a requestid's reply is replayed (Intuit forgets them; default 48 h)")  # fmt: skip


def config_from_args(args: argparse.Namespace, base_url: str) -> SandboxConfig:
    ids: list[str] = getattr(args, "qbo_client_id", None) or []

    def nth(option: str, index: int) -> str | None:
        values: list[str] = getattr(args, f"qbo_{option}", None) or []
        return values[index] if index < len(values) else None

    apps = []
    for index, client_id in enumerate(ids):
        secret = nth("client_secret", index)
        if secret is None:
            raise SystemExit(f"--client-id {client_id} needs a --client-secret")
        redirect = nth("redirect_uri", index)
        apps.append(AppRegistration(
            client_id=client_id, client_secret=secret, redirect_uris=[redirect] if redirect else [],
            verifier_token=nth("verifier_token", index) or "verifier-token",
            webhook_url=nth("webhook_url", index),
            webhook_format=cast(WebhookFormat, nth("webhook_format", index) or "legacy"),
        ))  # fmt: skip
    return SandboxConfig(
        base_url=base_url.rstrip("/"),
        apps=apps,
        requests_per_minute=args.qbo_requests_per_minute,
        max_in_flight=args.qbo_max_in_flight,
        time_scale=args.qbo_time_scale,
        state_file=args.qbo_state_file or _in_folder(getattr(args, "qbo_state_dir", None)),
        requestid_ttl_seconds=getattr(args, "qbo_requestid_ttl", 48 * 3600),
    )


def _in_folder(folder: str | None) -> str | None:
    return os.path.join(folder, STATE_FILE) if folder else None
