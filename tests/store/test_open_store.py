"""Which store a server and the CLI open, from the settings."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from ledgerbridge.cli import main
from ledgerbridge.settings import Settings
from ledgerbridge.store import SQLiteStore, open_store
from ledgerbridge.store.postgres import PostgresStore
from ledgerbridge.testing import free_port


def test_without_a_database_url_the_server_uses_its_sqlite_file(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    assert isinstance(store, SQLiteStore) and store.path == str(tmp_path / "ledgerbridge.db")


def test_a_postgresql_url_from_the_environment_selects_postgresql() -> None:
    settings = Settings.from_environment({"LEDGERBRIDGE_DATABASE_URL": "postgresql://u@db:5432/lb"})
    store = open_store(settings)
    assert isinstance(store, PostgresStore) and store.url == "postgresql://u@db:5432/lb"


def test_a_database_url_of_another_kind_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"must start with postgresql://, not mysql://"):
        open_store(Settings(database_url="mysql://u@db/lb"))


def test_the_cli_manages_accounts_in_the_database_the_url_names(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGERBRIDGE_DATABASE_URL", postgres_url)
    assert main(["accounts", "create", "Acme Ltd", "--id", "acme", "--plugins", "", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT id, name FROM accounts").fetchall() == [("acme", "Acme Ltd")]
    assert main(["accounts", "list", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "acme\tAcme Ltd\tplugins: -\n"
    assert not (tmp_path / "ledgerbridge.db").exists()


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    port = free_port()  # nothing listens there
    store = PostgresStore(f"postgresql://lb:s3cret@127.0.0.1:{port}/ledgerbridge", connect_timeout=1)
    with pytest.raises(ConnectionError, match=rf"PostgreSQL 127.0.0.1:{port}/ledgerbridge accepted no connection") as e:
        await store.open()
    assert "s3cret" not in str(e.value)
