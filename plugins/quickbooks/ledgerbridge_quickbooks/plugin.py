"""The quickbooks plugin's hook implementations, registered through the `ledgerbridge` entry-point group."""

from __future__ import annotations

import argparse
from typing import Any

from ledgerbridge import SandboxSpec, hookimpl


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ledgerbridge_quickbooks import sandbox

    sandbox.add_arguments(parser)


def _create_sandbox(args: argparse.Namespace, base_url: str) -> Any:
    from ledgerbridge_quickbooks import sandbox

    return sandbox.create_app(sandbox.config_from_args(args, base_url))


@hookimpl
def register_sandboxes() -> list[SandboxSpec]:
    return [
        SandboxSpec(
            name="quickbooks",
            description="a local emulator of QuickBooks Online",
            add_arguments=_add_sandbox_arguments,
            create_app=_create_sandbox,
        )
    ]
