"""Local emulators of vendor APIs that plugins ship (see docs/plugins.md, "Sandboxes")."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FOLDER = "sandboxes"


@dataclass(frozen=True)
class SandboxSpec:
    """A vendor emulator: `ledgerbridge sandbox NAME` runs it alone; `serve` mounts it at /sandbox/NAME.

    `create_app(args, base_url)` builds the ASGI app; `base_url` is the public URL it is reached at,
    mount prefix included. `mount_in_serve` says whether `ledgerbridge serve` should mount it (plugins say
    yes when no real credentials are configured). `state_option`, when set, is the sandbox's command-line
    option taking a folder: `serve` passes `<data dir>/sandboxes/NAME` through it, so what the sandbox holds
    survives restarts (`serve --reset-sandboxes` empties those folders).
    """

    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    create_app: Callable[[argparse.Namespace, str], Any]
    mount_in_serve: bool = True
    #: what the sandbox-mode banner shows: a title, the page a person starts at, and what they do there
    title: str = ""
    home_path: str = "/"
    acts_as: str = "the sandbox's own pages"
    state_option: str | None = None


def state_dir(data_dir: Path, name: str) -> Path:
    """Where a mounted sandbox keeps its state between runs of `serve`."""
    return data_dir / STATE_FOLDER / name


def serve_arguments(spec: SandboxSpec, data_dir: Path) -> list[str]:
    """The command line `serve` builds a mounted sandbox from: its state folder, when it keeps one."""
    if spec.state_option is None:
        return []
    folder = state_dir(data_dir, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    return [spec.state_option, str(folder)]


def reset_state(data_dir: Path) -> list[str]:
    """Forget every mounted sandbox's kept state (on purpose); the names of the sandboxes that had some."""
    root = data_dir / STATE_FOLDER
    if not root.is_dir():
        return []
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    shutil.rmtree(root)
    return names
