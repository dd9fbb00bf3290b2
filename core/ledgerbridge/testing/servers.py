"""Run an ASGI app on a real loopback socket, for tests and benchmarks.

`serve_in_thread` gives blocking clients (vendors' own SDKs) a real server: the app runs
on its own event loop in a daemon thread. `running_server` runs the app in the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

# Below Linux's ephemeral range (32768–60999), which every outgoing connection draws from: a port found free
# there can be taken by some client's connection before the server binds it.
LISTEN_PORTS = range(20000, 32768)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now, for apps that must know their own URL before they start."""
    for port in random.sample(LISTEN_PORTS, 20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        found: int = sock.getsockname()[1]
        return found


def _bound_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # every response written in two parts (headers, body) waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


POLL_SECONDS = 0.005


class PromptServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is told to. uvicorn looks at `should_exit` every 0.1 s, then
    sleeps 0.1 s more and polls its connections every 0.1 s while shutting down: well spent once for a
    production process, but a test suite starting and stopping hundreds of servers pays it hundreds of times."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def exit_soon(self) -> None:
        """Stop serving (from any thread)."""
        self.should_exit = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed: it has stopped
                self._loop.call_soon_threadsafe(self._exit.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(POLL_SECONDS)  # connections accepted just before the close finish setting up
        told: set[object] = set()
        deadline = asyncio.get_running_loop().time() + (self.config.timeout_graceful_shutdown or 10.0)
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            for connection in list(self.server_state.connections):
                if connection not in told:  # idle keep-alive: closes at once; busy: after its response
                    told.add(connection)
                    connection.shutdown()
            if asyncio.get_running_loop().time() > deadline:
                for task in self.server_state.tasks:
                    task.cancel(msg="the test server stopped")
                break
            await asyncio.sleep(POLL_SECONDS)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
        for connection in list(self.server_state.connections):  # set up while the app shut down
            connection.shutdown()
        await asyncio.sleep(0)  # their transports close on the next turn of the loop


def _server(app: Any, sock: socket.socket, **config: Any) -> PromptServer:
    host, port = sock.getsockname()[:2]
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "auto", "access_log": False}
    options.update(config)
    return PromptServer(uvicorn.Config(app, host=host, port=port, **options))


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, **config: Any) -> Iterator[str]:
    """Serve `app` on a loopback port in a background thread; yields its base URL."""
    sock = _bound_socket(host, port)
    server = _server(app, sock, **config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server thread stopped before it started")
            thread.join(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.exit_soon()
        thread.join(10)
        sock.close()


@contextlib.asynccontextmanager
async def running_server(app: Any, host: str = "127.0.0.1", port: int = 0, **config: Any) -> AsyncIterator[str]:
    """Serve `app` on a loopback port inside the running event loop; yields its base URL."""
    sock = _bound_socket(host, port)
    server = _server(app, sock, **config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.exit_soon()
        await asyncio.wait_for(task, 10)
        sock.close()
