"""The third-party path: the example plugin package, installed for real, is found through its entry
point (test_conformance_kit.py runs the conformance suite its author runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "plain-ledger"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(EXAMPLE)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def test_installed_plugin_is_listed_through_its_entry_point(installed: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledgerbridge.cli", "plugins", "--json"],
        env=installed,
        check=True,
        capture_output=True,
        text=True,
    )
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"plainledger", "quickbooks", "crmconnect"} <= plugins.keys()
    assert plugins["plainledger"]["distribution"] == "ledgerbridge-plainledger"
    assert plugins["plainledger"]["version"] == "0.1.0"
    assert {"on_payment", "on_invoice_change", "integration_card", "settings_schema"} <= set(
        plugins["plainledger"]["hooks"]
    )


def test_block_list_and_allow_list_choose_plugins(installed: dict[str, str]) -> None:
    def names(**env: str) -> set[str]:
        result = subprocess.run(
            [sys.executable, "-m", "ledgerbridge.cli", "plugins", "--json"],
            env={**installed, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        return {p["name"] for p in json.loads(result.stdout)}

    assert "plainledger" not in names(LEDGERBRIDGE_BLOCK_PLUGINS="plainledger")
    assert names(LEDGERBRIDGE_LOAD_PLUGINS="plainledger,quickbooks") == {"plainledger", "quickbooks"}
