"""Meta-tests, as datasette has them: every hook is documented for plugin authors and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from ledgerbridge import hookspecs
from ledgerbridge.plugins import PluginError, PluginManager

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
TEST_SOURCES = "\n".join(
    path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.name != Path(__file__).name
)


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_every_hook_is_documented_with_its_arguments(hook: str) -> None:
    section = re.search(rf"^### `{hook}`\n(.*?)(?=^### |^## |\Z)", GUIDE, re.S | re.M)
    assert section, f"docs/plugins.md has no section for {hook}"
    for argument in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f"{argument}:" in section.group(1), f"the {hook} section does not describe its argument {argument}"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_every_hook_has_a_test(hook: str) -> None:
    assert re.search(rf"def {hook}\(", TEST_SOURCES), f"no test implements the {hook} hook"


def test_a_misspelled_hook_is_refused() -> None:
    class Typo:
        @hookspecs.hookimpl
        def on_paymnet(self) -> None: ...

    manager = PluginManager()
    manager.register(Typo(), "typo")
    with pytest.raises(PluginError, match="on_paymnet"):
        manager.check_pending()
