"""The store the tests' servers run on: SQLite files by default; with LEDGERBRIDGE_TEST_STORE=postgresql, a fresh
PostgreSQL database for each test (`tox -e postgresql` runs the whole suite that way).

Every settings builder of the tests takes its `database_url` from `database_url()`, so a test asks for nothing
to run on both stores. A test about one store in particular (SQLite's file at rest, the replicas' PostgreSQL)
sets its own URL.
"""

from __future__ import annotations

import os

import pytest

_running: pytest.FixtureRequest | None = None


def on_postgresql() -> bool:
    return os.environ.get("LEDGERBRIDGE_TEST_STORE", "sqlite") == "postgresql"


def database_url() -> str | None:
    """The running test's database: None (SQLite in the test's data dir), or its own PostgreSQL database."""
    if not on_postgresql():
        return None
    if _running is None:
        raise RuntimeError("database_url() is for the running test and its fixtures")
    url: str = _running.getfixturevalue("postgres_url")  # created on first use, the same for the whole test
    return url


def database_url_for(request: pytest.FixtureRequest) -> str | None:
    """A database of its own for a fixture wider than one test (a module's live server)."""
    if not on_postgresql():
        return None
    url: str = request.getfixturevalue("postgres_cluster").create_database()
    return url


@pytest.fixture(autouse=True)
def _store_of_the_running_test(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    global _running
    _running = request
    yield
    _running = None
