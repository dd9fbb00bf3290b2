"""Links to the mounted vendor sandboxes' own pages, so a new user can act as each vendor's user.

Each plugin's `SandboxSpec` says what its sandbox is called, where a person starts, and what they do there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledgerbridge.sandboxes import SandboxSpec


@dataclass(frozen=True)
class SandboxLink:
    name: str
    title: str
    url: str
    description: str


def sandbox_links(sandbox_urls: dict[str, str], specs: dict[str, SandboxSpec]) -> list[SandboxLink]:
    links = []
    for name, base in sorted(sandbox_urls.items()):
        spec = specs.get(name)
        title = spec.title if spec and spec.title else f"{name} sandbox"
        path = spec.home_path if spec else "/"
        description = spec.acts_as if spec else "the sandbox's own pages"
        links.append(SandboxLink(name=name, title=title, url=base.rstrip("/") + path, description=description))
    return links
