"""The store contract: every test in this folder runs against SQLite and against PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from ledgerbridge.store import SQLiteStore, Store
from ledgerbridge.store.postgres import PostgresStore

StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores on one database (several stores on one database are several replicas on PostgreSQL)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")

        def make() -> Store:
            return PostgresStore(url, max_size=4)
    else:

        def make() -> Store:
            return SQLiteStore(tmp_path / "ledgerbridge.db")

    opened: list[Store] = []

    async def factory() -> Store:
        store = make()
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_stores: StoreFactory) -> Store:
    return await open_stores()
