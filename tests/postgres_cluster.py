"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, started on a free loopback port.

initdb and postgres refuse to run as root, so as root they run as the `postgres` system user (the Debian
package creates it) in a folder handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from ledgerbridge.testing import free_port

SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


def server_bin_dir() -> Path:
    """The newest installed server's bin folder (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable("PostgreSQL's server is not installed (run scripts/install-postgres)")


@dataclass
class Cluster:
    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir / "data"), "-U", SERVER_USER, "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        self.start_server()

    def start_server(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir / "data"), "-o", options, "-l", str(self.data_dir / "log"), "-w", "start"
        )

    def restart(self) -> None:
        """Stop the server, dropping every connection, and start it again on the same port (the tests' cluster
        commits asynchronously, so a crash would also lose the last commits)."""
        self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")
        self.start_server()

    def stop(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    bin_dir = server_bin_dir()
    run_as: str | None = None
    folder = Path(tempfile.mkdtemp(prefix="ledgerbridge-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            shutil.rmtree(folder)
            raise PostgresUnavailable(f"no {SERVER_USER!r} system user to run PostgreSQL as") from exc
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = SERVER_USER
    cluster = Cluster(bin_dir=bin_dir, data_dir=folder, port=free_port(), run_as=run_as)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
