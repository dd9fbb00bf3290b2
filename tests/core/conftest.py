from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings

from tests import stores
from tests.core.plugins import make_payment  # noqa: F401  (re-exported for tests)


def fast_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "admin_token": "test-admin-token",
        "backoff_base_seconds": 0.01,
        "backoff_cap_seconds": 0.05,
        "poll_interval_seconds": 0.05,
        "max_attempts": 3,
        "lease_seconds": 30.0,
    }
    values.update(overrides)
    if "database_url" not in values:
        values["database_url"] = stores.database_url()
    return Settings(**values)


def manager_with(plugins: dict[str, object]) -> PluginManager:
    manager = PluginManager()
    for name, plugin in plugins.items():
        manager.register(plugin, name)
    manager.check_pending()
    return manager


RuntimeFactory = Callable[..., Any]


@pytest.fixture
async def make_runtime(tmp_path: Path, test_database_url: str | None) -> AsyncIterator[RuntimeFactory]:
    started: list[Runtime] = []

    async def factory(plugins: dict[str, object], *, workers: bool = True, **overrides: Any) -> Runtime:
        overrides.setdefault("database_url", test_database_url)
        runtime = Runtime(fast_settings(tmp_path, **overrides), manager_with(plugins))
        await runtime.start(workers=workers)
        started.append(runtime)
        return runtime

    yield factory
    for runtime in started:
        await runtime.stop()
