"""`ledgerbridge` processes the fleet tests start, SIGKILL and start again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from ledgerbridge.testing import free_port

LEDGERBRIDGE = str(Path(sys.executable).with_name("ledgerbridge"))


class Process:
    """A `ledgerbridge` process that can be started again on the same port after a SIGKILL."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [LEDGERBRIDGE, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    async def ready(self, client: httpx.AsyncClient, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, (
                f"{self.args[:2]} exited: {self.log.read_text()[-3000:]}"
            )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(self.url + path)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.args[:2]} on {self.port} not ready")
