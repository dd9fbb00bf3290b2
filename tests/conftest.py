"""Fixtures every test folder may use: a real PostgreSQL cluster, started once per session when asked for."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.postgres_cluster import Cluster, PostgresUnavailable, running_cluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """PostgreSQL on a free loopback port for the session; skipped only off CI when it cannot be installed."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL is not available: {exc}")


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """A fresh, empty database in the session's cluster."""
    return postgres_cluster.create_database()


@pytest.fixture
def test_database_url(request: pytest.FixtureRequest) -> str | None:
    """The database the core's runtimes use: their SQLite file, or with LEDGERBRIDGE_TEST_STORE=postgresql a fresh
    PostgreSQL database (`tox -e postgresql` runs the core's tests that way)."""
    if os.environ.get("LEDGERBRIDGE_TEST_STORE", "sqlite") != "postgresql":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url
