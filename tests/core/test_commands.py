"""Subcommands come from installed packages through the `ledgerbridge.commands` entry-point group; the core
package itself carries none of them (the demo lives in `ledgerbridge_demo`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import ledgerbridge


def cli(*args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "ledgerbridge.cli", *args], capture_output=True, text=True, env=env)


def install_command(site: Path, name: str, module: str, source: str) -> None:
    """A distribution on `site` whose `ledgerbridge.commands` entry point `name` is `module:register`."""
    (site / f"{module}.py").write_text(source)
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[ledgerbridge.commands]\n{name} = {module}:register\n")


def test_the_core_package_has_no_demo() -> None:
    assert importlib.util.find_spec("ledgerbridge.demo") is None
    core = Path(ledgerbridge.__file__).parent
    assert not any("ledgerbridge_demo" in path.read_text() for path in core.rglob("*.py"))


def test_an_installed_command_is_added_and_runs(tmp_path: Path) -> None:
    install_command(tmp_path, "hello", "hello_command", HELLO)
    listed = cli("--help", path=tmp_path)
    assert listed.returncode == 0 and "hello" in listed.stdout and "demo" in listed.stdout

    result = cli("hello", "--name", "Ada", path=tmp_path)
    assert (result.returncode, result.stdout) == (3, "hello Ada\n"), result.stderr


def test_a_broken_command_warns_and_the_others_still_work(tmp_path: Path) -> None:
    install_command(tmp_path, "broken", "broken_command", "def register(subparsers):\n    raise RuntimeError('no')\n")
    result = cli("plugins", "--json", path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: command 'broken' failed to load: no" in result.stderr


HELLO = """
def register(subparsers):
    hello = subparsers.add_parser("hello", help="say hello")
    hello.add_argument("--name")
    hello.set_defaults(handler=lambda args: print(f"hello {args.name}") or 3)
"""
