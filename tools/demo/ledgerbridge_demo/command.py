"""The `demo` subcommand, added to the `ledgerbridge` CLI through the `ledgerbridge.commands` entry point."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ledgerbridge demo` to the CLI's subcommands (an `argparse` subparsers action)."""
    demo = subparsers.add_parser("demo", help="run the server with both sandboxes and play a scripted day of business")
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"), help="wiped at start (default ./demo-data)")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-keep-running", action="store_true", help="stop once the summary is printed")
    demo.add_argument("--books", choices=["quickbooks", "xero"], default="quickbooks", help="the accounting backend")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ledgerbridge_demo import demo

    options = demo.Options(data_dir=args.data_dir, port=args.port, keep_running=not args.no_keep_running,
                           books=args.books)  # fmt: skip
    return demo.main(options)
