"""Fixtures every test folder may use: a real PostgreSQL cluster, started once per session when asked for."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import stores
from tests.postgres_cluster import Cluster, PostgresUnavailable, running_cluster
from tests.stores import _store_of_the_running_test  # noqa: F401 (autouse)


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
def test_database_url() -> str | None:
    """The database the test's runtimes use (`tests.stores.database_url`): None for SQLite."""
    return stores.database_url()


@pytest.hookimpl(trylast=True)  # after any shuffling plugin
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, so that the workers of `pytest -n` don't end waiting on one started last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
