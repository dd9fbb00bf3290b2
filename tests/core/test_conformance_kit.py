"""The conformance kit as a plugin author runs it: in a folder outside this repository, under a pytest
configuration that is not ours, with ledgerbridge from the current environment.

It fails a plugin that books a repeated delivery twice, one whose side effects it cannot observe, and a
producer whose routes, background tasks or events are wrong; the plain-ledger example passes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

KIT_PLUGINS = Path(__file__).parent / "kit_plugins"
EXAMPLE = Path(__file__).parents[2] / "examples" / "plain-ledger"

# (extra pytest arguments, the ini file): no asyncio plugin at all with warnings as errors, or whatever
# plugins this environment has (pytest-asyncio, anyio) under an empty configuration
CONFIGURATIONS = {
    "no asyncio plugin, warnings are errors": (["-p", "no:asyncio"], "[pytest]\nfilterwarnings = error\n"),
    "the environment's pytest plugins, an empty ini": ([], "[pytest]\n"),
}


def run_pytest(folder: Path, ini: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = folder.parent / f"{folder.name}.ini"  # beside the folder, so nothing of ours is found above it
    config.write_text(ini)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(folder)  # the plugin comes from the copy, ledgerbridge from this environment
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(config), *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


Outcomes = dict[str, tuple[str, str]]


def outcomes(report: Path) -> Outcomes:
    """`Class::test` → (passed | failed | skipped, the failure's text) from a JUnit XML report."""
    found: Outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        key = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        failure, error = case.find("failure"), case.find("error")
        if failure is not None:
            found[key] = ("failed", f"{failure.get('message', '')}\n{failure.text or ''}")
        elif error is not None:
            found[key] = ("error", f"{error.get('message', '')}\n{error.text or ''}")
        else:
            found[key] = ("skipped" if case.find("skipped") is not None else "passed", "")
    return found


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_the_example_passes_the_kit_from_a_copy_outside_the_repository(tmp_path: Path, configuration: str) -> None:
    copy = tmp_path / "plain-ledger"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    args, ini = CONFIGURATIONS[configuration]

    result = run_pytest(copy, ini, *args, "-rs", "tests/test_conformance.py")

    assert result.returncode == 0, result.stdout + result.stderr
    # the consumer checks pass; the producer checks have nothing to check (no routes, tasks or events)
    assert "8 passed, 3 skipped" in result.stdout, result.stdout
    assert "plainledger has no routes" in result.stdout


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    folder = tmp_path_factory.mktemp("kit") / "author"
    folder.mkdir()
    for module in ("doublebooker.py", "producers.py"):
        shutil.copy(KIT_PLUGINS / module, folder / module)
    shutil.copy(KIT_PLUGINS / "kit_suite.py", folder / "test_kit.py")
    args, ini = CONFIGURATIONS["no asyncio plugin, warnings are errors"]
    result = run_pytest(folder, ini, *args, f"--junitxml={folder / 'report.xml'}", "test_kit.py")
    assert result.returncode == 1, result.stdout + result.stderr  # 1: some tests failed, nothing broke
    return outcomes(folder / "report.xml")


def of(found: Outcomes, cls: str) -> Outcomes:
    return {key.split("::")[1]: value for key, value in found.items() if key.startswith(cls + "::")}


def test_a_plugin_that_books_a_repeated_delivery_twice_fails_the_kit(kit_run: Outcomes) -> None:
    results = of(kit_run, "TestDoubleBooker")
    outcome, text = results.pop("test_a_repeated_delivery_does_the_work_once")
    assert outcome == "failed"
    assert "on_payment: a repeated delivery (same ctx.idempotency_key) did the work twice" in text
    assert "on_invoice_change: a repeated delivery (same ctx.idempotency_key) did the work twice" in text
    # the rest of the kit finds nothing wrong with it: the failure is the idempotency check's
    assert {outcome for outcome, _ in results.values()} <= {"passed", "skipped"}, results
    assert results["test_business_hooks_handle_a_sample_event"][0] == "passed"


def test_a_consumer_without_observe_fails_telling_the_author_to_pass_it(kit_run: Outcomes) -> None:
    outcome, text = of(kit_run, "TestUnobserved")["test_side_effects_are_observable"]
    assert outcome == "failed"
    assert "unobserved consumes on_payment, on_invoice_change: pass observe= to plugin_test_class" in text


def test_an_observe_that_sees_nothing_fails_the_kit(kit_run: Outcomes) -> None:
    outcome, text = of(kit_run, "TestBlindObserver")["test_a_repeated_delivery_does_the_work_once"]
    assert outcome == "failed"
    assert "on_payment: the delivery succeeded but observe(ctx) shows no change" in text


PRODUCER_CHECKS = (
    "test_routes_refuse_malformed_requests_with_a_4xx",
    "test_background_tasks_run_for_an_unconnected_account",
    "test_published_events_decode_through_the_core",
)


def test_a_careful_producer_passes_the_producer_checks(kit_run: Outcomes) -> None:
    results = of(kit_run, "TestTidyProducer")
    assert {check: results[check][0] for check in PRODUCER_CHECKS} == dict.fromkeys(PRODUCER_CHECKS, "passed")
    assert {outcome for outcome, _ in results.values()} <= {"passed", "skipped"}, results


def test_a_sloppy_producer_fails_each_producer_check(kit_run: Outcomes) -> None:
    results = of(kit_run, "TestSloppyProducer")
    routes, tasks, events = (results[check] for check in PRODUCER_CHECKS)
    assert routes[0] == tasks[0] == events[0] == "failed"
    assert "POST /plugins/sloppy/webhook answered truncated JSON with 500, not a 4xx" in routes[1]
    assert "GET /plugins/sloppy/callback answered a garbled query with 500" in routes[1]
    assert "background task 'poll' raised TypeError" in tasks[1]
    assert "published payment 'payment-42' does not decode: Expected `str`, got `int` - at `$.payment_id`" in events[1]


def test_a_plugin_whose_role_lets_no_event_reach_its_hooks_fails_the_kit(kit_run: Outcomes) -> None:
    outcome, text = of(kit_run, "TestRoleless")["test_its_role_lets_events_reach_its_hooks"]
    assert outcome == "failed"
    assert "roleless implements on_payment but no event will reach it: declare its role" in text
