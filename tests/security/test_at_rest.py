"""What is on disk and in the logs: owner-only files, no printed token, strong tokens, throttled guessing."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge.web.auth import WeakAdminToken

from tests.security.conftest import ADMIN, TOKEN, Product, product_settings, real_plugins


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_and_every_database_file_are_owner_only(tmp_path: Path, clean_env: None) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    port = free_port()
    settings = product_settings(data, port, admin_token=None, database_url=None)  # SQLite's files at rest
    app = create_app(settings, plugins=real_plugins())
    async with running_server(app, port=port) as url, httpx.AsyncClient(base_url=url) as http:
        token = (data / "admin-token").read_text()
        created = await http.post(
            "/admin/api/accounts", json={"name": "Acme"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201
        files = ["ledgerbridge.db", "ledgerbridge.db-wal", "ledgerbridge.db-shm", "admin-token", "session.key"]
        assert mode(data) == 0o700
        for name in files:
            assert mode(data / name) == 0o600, name
        for path in data.rglob("*"):
            if path.is_file():
                assert mode(path) & 0o077 == 0, f"{path} is readable by others"


async def test_an_existing_world_readable_database_is_narrowed_to_its_owner(tmp_path: Path, clean_env: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ledgerbridge.db").touch(mode=0o644)
    port = free_port()
    app = create_app(product_settings(data, port, database_url=None), plugins=real_plugins())
    async with running_server(app, port=port):
        assert mode(data / "ledgerbridge.db") == 0o600
        assert mode(data / "ledgerbridge.db-wal") == 0o600


def test_a_short_admin_token_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    with pytest.raises(WeakAdminToken, match="at least 16 characters"):
        create_app(product_settings(tmp_path, free_port(), admin_token="hunter2"), plugins=real_plugins())


async def serve(tmp_path: Path, env: dict[str, str], seconds: float = 20) -> tuple[int | None, str, str]:
    """Run `ledgerbridge serve` until it answers /healthz (or exits); its exit code and output."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledgerbridge.cli", "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port),
        env={**os.environ, "LEDGERBRIDGE_QBO_CONTACTS_EVERY": "3600", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        for _ in range(int(seconds * 10)):
            if process.returncode is not None:
                break
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    if process.returncode is None:
        process.terminate()
    out, err = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_serve_says_where_the_admin_token_is_and_never_prints_it(tmp_path: Path, clean_env: None) -> None:
    _, out, err = await serve(tmp_path, {})
    token = (tmp_path / "data" / "admin-token").read_text().strip()
    assert token not in out + err
    assert f"admin token: in {(tmp_path / 'data' / 'admin-token').resolve()}" in out


@pytest.mark.slow
async def test_serve_with_a_weak_operator_token_exits_non_zero_with_the_reason(tmp_path: Path, clean_env: None) -> None:
    code, _, err = await serve(tmp_path, {"LEDGERBRIDGE_ADMIN_TOKEN": "password"})
    assert code not in (0, None)
    assert "at least 16 characters" in err


async def test_wrong_tokens_are_throttled_per_client(product: Product) -> None:
    wrong = {"Authorization": "Bearer not-the-admin-token-at-all"}
    for _ in range(10):
        assert (await product.http.get("/admin/api/accounts", headers=wrong)).status_code == 401
    blocked = await product.http.get("/admin/api/accounts", headers=ADMIN)  # even the right token, for a while
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    signin = await product.http.post("/signin", data={"token": TOKEN})
    assert signin.status_code in (403, 429)
    other_client = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=product.url, transport=other_client) as other:
        assert (await other.get("/admin/api/accounts", headers=ADMIN)).status_code == 200
