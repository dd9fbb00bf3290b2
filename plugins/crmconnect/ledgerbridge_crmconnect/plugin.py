"""The crmconnect plugin's hook implementations, registered through the `ledgerbridge` entry-point group."""

from __future__ import annotations

import argparse
from typing import Any

from ledgerbridge import SandboxSpec, hookimpl


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ledgerbridge_crmconnect import sandbox

    sandbox.add_arguments(parser)


def _create_sandbox(args: argparse.Namespace, base_url: str) -> Any:
    from ledgerbridge_crmconnect import sandbox

    return sandbox.create_app(sandbox.config_from_args(args, base_url))


@hookimpl
def register_sandboxes() -> list[SandboxSpec]:
    return [
        SandboxSpec(
            name="crmconnect",
            description="a local emulator of CRM Connect (HighLevel API v2)",
            add_arguments=_add_sandbox_arguments,
            create_app=_create_sandbox,
        )
    ]
