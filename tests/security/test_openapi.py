"""The published OpenAPI document of the admin API and the webhooks, and schemathesis over it: generated
valid and invalid requests (positive and negative modes) never get a 5xx, invalid ones always a 4xx, and
every answer matches the document."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests import stores
from tests.security.conftest import ADMIN, VENDOR_ENV, product_settings, real_plugins

REAL = {"account_id": "acme", "plugin": "crmconnect"}
MAX_EXAMPLES = 12  # per operation and mode: enough to find a crash, small enough for a shared CI machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]  # fmt: skip


class LiveServer:
    """The whole server (both plugins, both sandboxes) on a loopback port, in a thread of its own, because
    schemathesis drives it synchronously."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.port = free_port()
        settings = product_settings(data_dir, self.port, database_url=database_url)
        self.app = create_app(settings, runtime=Runtime(settings, real_plugins()))
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        async with running_server(self.app, port=self.port):
            self._ready.set()
            await asyncio.to_thread(self._stop.wait)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture(scope="module")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    saved = {name: os.environ.pop(name) for name in VENDOR_ENV if name in os.environ}
    database_url = stores.database_url_for(request)
    with tempfile.TemporaryDirectory() as data, LiveServer(Path(data), database_url) as server:
        with httpx.Client(base_url=server.url, headers=ADMIN) as http:
            assert http.post("/admin/api/accounts", json={"name": "Acme"}).status_code == 201
        yield server
    os.environ.update(saved)


def test_the_openapi_document_is_published_to_the_admin_only(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        assert http.get("/admin/api/openapi.json").status_code == 401
        document = http.get("/admin/api/openapi.json", headers=ADMIN).json()
    assert document["openapi"].startswith("3.1")
    assert "/admin/api/accounts/{account_id}/deliveries/{delivery_id}/replay" in document["paths"]
    assert {"/plugins/crmconnect/webhooks", "/plugins/quickbooks/webhooks"} <= set(document["paths"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_generated_requests_never_get_a_server_error_and_invalid_ones_are_refused(
    live_server: LiveServer, mode: GenerationMode
) -> None:
    with httpx.Client(base_url=live_server.url, headers=ADMIN) as http:
        document = http.get("/admin/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live_server.url, headers=ADMIN)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        # once with every parameter generated, once inside the real account (where queries and bodies are read)
        fixed = {k: v for k, v in REAL.items() if k in names}
        for path_parameters in [None, fixed] if fixed and operation.method.upper() != "DELETE" else [None]:

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
            def check(case: Any) -> None:
                case.call_and_validate(base_url=live_server.url, headers=ADMIN, checks=CHECKS, timeout=30)

            try:
                check()
            except Unsatisfiable:
                continue  # nothing to get wrong: no parameters and no body (GET /admin/api/plugins)
            except Exception as exc:  # every broken operation is listed at once
                inner = "; ".join(str(e) for e in getattr(exc, "exceptions", ()))  # a flaky failure's own
                failures.append(f"{operation.label} {path_parameters or ''}: {exc!s:.1500} {inner:.1500}")
    assert not failures, "\n\n".join(failures)
