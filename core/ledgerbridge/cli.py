"""The `ledgerbridge` command: serve, plugins, accounts, deliveries, sandbox, and installed commands."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ledgerbridge import __version__, sandboxes
from ledgerbridge.plugins import PluginError, PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

COMMANDS_GROUP = "ledgerbridge.commands"


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_environment(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        public_url=getattr(args, "public_url", None),
        plugins_dir=getattr(args, "plugins_dir", None),
    )


def _plugins(settings: Settings) -> PluginManager:
    return PluginManager.discover(plugins_dir=settings.plugins_dir)


def _print_json(value: Any) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ledgerbridge.observability import configure_logging
    from ledgerbridge.web.app import create_app
    from ledgerbridge.web.auth import WeakAdminToken, token_path

    settings = _settings(args)
    try:
        configure_logging(settings.log_format, args.log_level)
    except ValueError as exc:
        return _fail(str(exc))
    forgotten = sandboxes.reset_state(settings.data_dir) if args.reset_sandboxes else None
    try:
        app = create_app(settings, mount_sandboxes=not args.no_sandboxes)
    except WeakAdminToken as exc:
        return _fail(str(exc))
    base = settings.base_url
    print(f"ledgerbridge {__version__} on {base}  (data in {settings.data_dir.resolve()})")
    token_source = "LEDGERBRIDGE_ADMIN_TOKEN" if settings.admin_token else str(token_path(settings.data_dir).resolve())
    print(f"  admin token: in {token_source}")  # never the token itself: stdout ends up in process logs
    print(f"  plugins: {', '.join(app.state.runtime.plugins.names()) or 'none'}")
    for name, url in app.state.sandbox_urls.items():
        print(f"  sandbox {name}: {url}")
    if forgotten is not None:
        print(f"  sandboxes reset: {', '.join(forgotten) or 'none had kept anything'}")
    sys.stdout.flush()  # uvicorn re-raises the stopping signal at exit: what is still buffered would be lost
    # JSON: uvicorn's own lines go through the root logger's JSON handler too (log_config=None leaves them there)
    log_config = None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False, log_config=log_config
    )
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    infos = _plugins(_settings(args)).info()
    if args.json:
        _print_json([info.__dict__ for info in infos])
        return 0
    if not infos:
        print("no plugins installed")
    for info in infos:
        role = f", role: {info.role}" if info.role else ", part of the core" if info.core else ""
        print(f"{info.name} {info.version or ''}  ({info.distribution or 'local'}{role})")
        print(f"    hooks: {', '.join(info.hooks)}")
    return 0


async def _with_runtime(settings: Settings, action: Callable[[Runtime], Awaitable[int]]) -> int:
    """The core on the data dir's store, its workers and plugins not started (a server may be running)."""
    runtime = Runtime(settings, _plugins(settings))
    await runtime.store.open()
    try:
        return await action(runtime)
    finally:
        await runtime.store.close()


def cmd_accounts(args: argparse.Namespace) -> int:
    """Accounts through the same operations (and rules) as the admin API, on the store, no server needed."""
    settings = _settings(args)

    async def run(runtime: Runtime) -> int:
        if args.action == "list":
            for account in await runtime.store.list_accounts():
                enabled = sorted(await runtime.store.enabled_plugins(account.id))
                print(f"{account.id}\t{account.name}\tplugins: {', '.join(enabled) or '-'}")
            return 0
        if args.action == "create":
            wanted = None if args.plugins is None else [p for p in args.plugins.split(",") if p]
            account = await operations.create_account(runtime, args.name, args.id, wanted)
            enabled = sorted(await runtime.store.enabled_plugins(account.id))
            print(f"created account {account.id} with plugins: {', '.join(enabled) or '-'}")
            return 0
        account = await operations.get_account(runtime, args.account)
        if args.action in ("enable", "disable"):
            enabled = args.action == "enable"
            await operations.set_enabled(runtime, account, args.plugin, enabled, switch=args.switch)
            print(f"{args.plugin} {args.action}d for {account.id}")
            return 0
        if args.action == "backfill":
            since = await operations.set_backfill(runtime, account, None if args.since == "off" else args.since)
            print(f"backfill {'off' if since is None else 'from ' + args.since} for {account.id}")
            return 0
        await runtime.store.delete_account(account.id)
        print(f"deleted account {account.id}")
        return 0

    return asyncio.run(_with_runtime(settings, run))


def cmd_deliveries(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run(runtime: Runtime) -> int:
        account = await operations.get_account(runtime, args.account)
        if args.action == "list":
            for d in await runtime.store.list_deliveries(account.id, args.state, args.limit):
                print(
                    f"{d.id}\t{d.state}\t{d.plugin}\t{d.event_type}\t{d.object_key}\tattempts={d.attempts}"
                    f"\t{d.last_error or ''}"
                )
            return 0
        if args.action == "send-skipped":
            report = await operations.send_skipped(runtime, account, args.ids or None)
            for sent in report["sent"]:
                print(f"delivery {sent['id']} queued for {sent['plugin']}")
            for refused in report["refused"]:
                print(f"delivery {refused['id']} not sent: {refused['reason']}", file=sys.stderr)
            print(f"{len(report['sent'])} sent; a running server delivers them")
            return 0
        await operations.replay_delivery(runtime, account, args.delivery)
        print(f"delivery {args.delivery} queued again; a running server picks it up")
        return 0

    return asyncio.run(_with_runtime(settings, run))


def cmd_sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    specs = args.plugins.sandboxes() if args.plugins else {}
    if args.name not in specs:
        known = ", ".join(sorted(specs)) or "none installed"
        return _fail(f"usage: ledgerbridge sandbox NAME [options]; sandboxes: {known}")
    spec = specs[args.name]
    parser = argparse.ArgumentParser(prog=f"ledgerbridge sandbox {spec.name}", description=spec.description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--public-url", help="the URL clients reach the sandbox at (default from host and port)")
    parser.add_argument("--log-level", default="info")
    spec.add_arguments(parser)
    options = parser.parse_args(args.options)
    base_url = (options.public_url or f"http://{options.host}:{options.port}").rstrip("/")
    app = spec.create_app(options, base_url)
    print(f"{spec.name} sandbox on {base_url}")
    uvicorn.run(app, host=options.host, port=options.port, log_level=options.log_level, access_log=False)
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def build_parser(plugins: PluginManager | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledgerbridge", description="Keeps a CRM and an accounting system in step.")
    parser.add_argument("--version", action="version", version=f"ledgerbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="where the database and keys live (default ./data)")
    common.add_argument("--plugins-dir", type=Path, help="also load every *.py in this folder as a plugin")

    serve = commands.add_parser("serve", help="run the server", parents=[common])
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--public-url", help="the URL users and vendors reach this server at")
    serve.add_argument("--no-sandboxes", action="store_true", help="do not mount the vendor sandboxes")
    serve.add_argument(
        "--reset-sandboxes", action="store_true", help="start the sandboxes empty (forget what they kept in --data-dir)"
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)

    listing = commands.add_parser(
        "plugins", help="list installed plugins and the hooks each implements", parents=[common]
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_plugins)

    accounts = commands.add_parser("accounts", help="manage accounts and their plugins")
    actions = accounts.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common])
    create = actions.add_parser("create", parents=[common])
    create.add_argument("name")
    create.add_argument("--id")
    create.add_argument("--plugins", help="comma-separated plugins to enable (default: all installed)")
    for verb in ("enable", "disable"):
        toggle = actions.add_parser(verb, parents=[common])
        toggle.add_argument("account")
        toggle.add_argument("plugin")
        toggle.add_argument(
            "--switch", action="store_true", help="turning on other books: switch to them (the current go off)"
        )
    backfill = actions.add_parser(
        "backfill", parents=[common], help="also sync payments and invoices created since a date"
    )
    backfill.add_argument("account")
    backfill.add_argument("since", help="YYYY-MM-DD, or 'off'")
    delete = actions.add_parser("delete", parents=[common])
    delete.add_argument("account")
    accounts.set_defaults(handler=cmd_accounts)

    deliveries = commands.add_parser("deliveries", help="inspect deliveries and replay dead letters")
    d_actions = deliveries.add_subparsers(dest="action", required=True)
    d_list = d_actions.add_parser("list", parents=[common])
    d_list.add_argument("account")
    d_list.add_argument("--state", choices=["pending", "done", "skipped", "dead"])
    d_list.add_argument("--limit", type=int, default=50)
    replay = d_actions.add_parser("replay", parents=[common])
    replay.add_argument("account")
    replay.add_argument("delivery", type=int)
    send = d_actions.add_parser("send-skipped", parents=[common], help="send skipped events now (nothing twice)")
    send.add_argument("account")
    send.add_argument("ids", type=int, nargs="*", help="which skipped deliveries (default: all of the account's)")
    deliveries.set_defaults(handler=cmd_deliveries)

    sandbox = commands.add_parser("sandbox", help="run a vendor sandbox on its own", add_help=False)
    sandbox.add_argument("name", nargs="?", help="which sandbox; `ledgerbridge sandbox NAME --help` for its options")
    sandbox.add_argument("options", nargs=argparse.REMAINDER)
    sandbox.set_defaults(handler=cmd_sandbox, plugins=plugins)
    _add_installed_commands(commands)
    return parser


def _add_installed_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands other packages add: an entry point of `ledgerbridge.commands` names a function
    `register(subparsers)` that adds its subcommand with a `handler(args) -> int` default."""
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_GROUP):
        if entry_point.name in commands.choices:
            continue  # a built-in command is never replaced
        try:
            entry_point.load()(commands)
        except Exception as exc:
            print(f"warning: command {entry_point.name!r} failed to load: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        plugins: PluginManager | None = PluginManager.discover()
    except PluginError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        plugins = None
    args = build_parser(plugins).parse_args(argv)
    try:
        return int(args.handler(args))
    except PluginError as exc:
        return _fail(str(exc))
    except ApiError as exc:
        return _fail(exc.message)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
