"""A server killed with SIGKILL after acknowledging events, before processing them, loses nothing and
repeats nothing once restarted. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ledgerbridge.testing import free_port

PLUGINS_DIR = Path(__file__).parent / "crash_plugins"
EVENTS = 40


def start_server(data_dir: Path, port: int, sink_file: Path, *, hold: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEDGERBRIDGE_LOAD_PLUGINS": "source,sink",
        "LEDGERBRIDGE_LEASE_SECONDS": "2",
        "LEDGERBRIDGE_POLL_INTERVAL_SECONDS": "0.1",
        "LEDGERBRIDGE_ADMIN_TOKEN": "crash-admin-token-0001",
        "CRASH_SINK_FILE": str(sink_file),
    }
    env.pop("CRASH_SINK_HOLD", None)
    if hold:
        env["CRASH_SINK_HOLD"] = "1"
    command = [
        sys.executable,
        "-m",
        "ledgerbridge.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--plugins-dir",
        str(PLUGINS_DIR),
        "--no-sandboxes",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not become ready")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_sigkill_after_acknowledging_loses_nothing_and_repeats_nothing(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data_dir, sink_file, port = tmp_path / "data", tmp_path / "side-effects.txt", free_port()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledgerbridge.cli",
            "accounts",
            "create",
            "Acme",
            "--data-dir",
            str(data_dir),
            "--plugins-dir",
            str(PLUGINS_DIR),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "LEDGERBRIDGE_LOAD_PLUGINS": "source,sink"},
    )

    first = start_server(data_dir, port, sink_file, hold=True)
    processes.append(first)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for n in range(EVENTS):
            reply = client.post(
                "/plugins/source/events", json={"account": "acme", "id": f"e{n}", "payment_id": f"p{n}"}
            )
            assert reply.status_code == 200 and reply.json() == {"stored": True}
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert not sink_file.exists()  # acknowledged, not processed

    second = start_server(data_dir, port, sink_file, hold=False)
    processes.append(second)
    headers = {"Authorization": "Bearer crash-admin-token-0001"}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        while time.monotonic() < deadline:
            counts = client.get("/admin/api/accounts/acme").json()["deliveries"]
            if counts.get("done") == EVENTS:
                break
            time.sleep(0.2)
        # the same events sent again after the restart are recognised, not re-applied
        again = client.post("/plugins/source/events", json={"account": "acme", "id": "e0", "payment_id": "p0"})
        assert again.json() == {"stored": False}
        assert client.get("/admin/api/accounts/acme").json()["deliveries"] == {"done": EVENTS}

    lines = sink_file.read_text().splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted(f"p{n}" for n in range(EVENTS))
    assert len(lines) == len(set(lines)) == EVENTS
