"""Local emulators of vendor APIs that plugins ship (see docs/plugins.md, "Sandboxes")."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxSpec:
    """A vendor emulator: `ledgerbridge sandbox NAME` runs it alone; `serve` mounts it at /sandbox/NAME.

    `create_app(args, base_url)` builds the ASGI app; `base_url` is the public URL it is reached at,
    mount prefix included. `mount_in_serve` says whether `ledgerbridge serve` should mount it (plugins say
    yes when no real credentials are configured).
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
