"""Webhook intake: the real signed CRM Connect webhook route vs a bare Starlette endpoint, same run, same generator.

The durable side is `ledgerbridge serve` (the user's defaults: SQLite, 16 workers, asyncio + h11 as installed)
with several accounts, each connected to its own CRM location with its own Ed25519 webhook key: every request
goes through the signature check, the location → account resolution and the committed inbox insert. The bare
side is a Starlette endpoint under the same uvicorn that parses the same body and answers. Both get the same
HighLevel-shaped `OrderCreate` bodies, 10 % of them repeats of earlier ones (a repeat must be "duplicate").

Two measurements per side:
- maximum sustained rate, closed loop: `wrk` (Debian: `apt-get install -y wrk`) when it is on PATH, else a
  multi-process Python generator (raw HTTP/1.1 over asyncio streams, one process per core);
- latency at a constant offered rate (default 500 req/s), open loop: a multi-process Python generator sends on
  a fixed schedule and times each request from when it was due, so a stalled server is not hidden by a
  generator that waits for it (no coordinated omission).
Server CPU per request comes from /proc/<pid>/stat around the max-rate phase. Afterwards every acknowledged
webhook is looked up in the database: it must be there exactly once.

    .venv/bin/python bench/intake.py [--seconds 10] [--rate 500] [--locations 5] [--connections 64]
                                     [--store sqlite|postgresql]

`--store postgresql` starts a throwaway local PostgreSQL (Debian's postgresql package, as the tests use) with
its durable defaults (fsync and synchronous commit on, unlike the tests' cluster) and serves from it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledgerbridge.testing import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HERE = Path(__file__).parent
PATH = "/plugins/crmconnect/webhooks"
ADMIN = "bench-admin-token-0001"
REPEATS = 0.10  # every tenth webhook repeats an earlier one


# --- the baseline: run as `uvicorn intake:bare_app --app-dir bench` -----------------------------------------


async def _bare_receive(request: Request) -> Response:
    body = json.loads(await request.body())
    return JSONResponse({"status": "stored", "id": "webhook:" + body["webhookId"]})


bare_app = Starlette(routes=[Route(PATH, _bare_receive, methods=["POST"])])


# --- signed webhooks -------------------------------------------------------------------------------------------


@dataclass
class Location:
    account: str
    location_id: str
    key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    @property
    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()


def order_body(location: Location, n: int) -> bytes:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {
        "type": "OrderCreate",
        "locationId": location.location_id,
        "altId": location.location_id,
        "altType": "location",
        "_id": f"{uuid.uuid4().hex[:24]}",
        "contactId": f"contact{n % 997:05d}",
        "contactSnapshot": {
            "locationId": location.location_id,
            "id": f"contact{n % 997:05d}",
            "email": f"buyer{n % 997}@example.com",
            "name": "Ada Lovelace",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "country": "US",
        },
        "status": "completed",
        "paymentStatus": "paid",
        "amount": 99.5,
        "currency": "USD",
        "items": [{"name": "Plan", "qty": 1, "price": {"amount": 99.5, "currency": "USD", "name": "Plan"}}],
        "createdAt": now,
        "timestamp": now,
        "webhookId": str(uuid.uuid4()),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed_pool(locations: Sequence[Location], count: int) -> list[tuple[str, bytes]]:
    """`count` (signature, body) pairs over all locations; every tenth repeats one sent a while before."""
    pool: list[tuple[str, bytes]] = []
    for n in range(count):
        if n % 10 == 9:
            pool.append(pool[n // 2])
            continue
        location = locations[n % len(locations)]
        raw = order_body(location, n)
        pool.append((base64.b64encode(location.key.sign(raw)).decode(), raw))
    return pool


# --- a Python generator: raw HTTP/1.1 keep-alive over asyncio streams -------------------------------------------


def _request_bytes(port: int, signature: str, raw: bytes) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"x-ghl-signature: {signature}\r\ncontent-length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


class Conn:
    """One keep-alive connection; reopened when the server closed it while idle (uvicorn does after 5 s)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.reader is not None and self.writer is not None:
            self.writer.write(request)
            try:
                return await self._response(self.reader)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise  # closed half-way through an answer: a real failure
                self.writer.close()  # closed before answering: the request never reached the app
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(request)
        return await self._response(self.reader)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await reader.readexactly(length)


def _ack_id(status: int, body: bytes) -> str | None:
    if status != 200:
        return None
    reply = json.loads(body)
    return str(reply["id"]) if reply.get("status") in ("stored", "duplicate") else None


async def _closed(port: int, requests: list[bytes], connections: int, seconds: float) -> dict[str, Any]:
    deadline = time.perf_counter() + seconds
    acked: list[str] = []
    errors = 0
    position = 0

    async def loop() -> None:
        nonlocal errors, position
        conn = Conn(port)
        while time.perf_counter() < deadline and position < len(requests):
            request, position = requests[position], position + 1
            status, body = await conn.send(request)
            ack = _ack_id(status, body)
            if ack is None:
                errors += 1
            else:
                acked.append(ack)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    return {"done": len(acked) + errors, "elapsed": time.perf_counter() - started, "acked": acked, "errors": errors}


async def _open(port: int, requests: list[bytes], rate: float) -> dict[str, Any]:
    idle: collections.deque[Conn] = collections.deque(Conn(port) for _ in range(16))
    latencies: list[float] = []
    acked: list[str] = []
    errors = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal errors
        conn = idle.popleft() if idle else Conn(port)
        status, body = await conn.send(request)
        latencies.append(time.perf_counter() - due)  # from when it was due, not when it left
        idle.append(conn)
        ack = _ack_id(status, body)
        if ack is None:
            errors += 1
        else:
            acked.append(ack)

    tasks = []
    start = time.perf_counter() + 0.05
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    return {"latencies": latencies, "acked": acked, "errors": errors}


def _child(mode: str, port: int, pool: list[tuple[str, bytes]], arg: float, seconds: float, out: Any) -> None:
    requests = [_request_bytes(port, signature, raw) for signature, raw in pool]
    try:
        if mode == "closed":
            out.put(asyncio.run(_closed(port, requests, int(arg), seconds)))
        else:
            out.put(asyncio.run(_open(port, requests, arg)))
    except BaseException as exc:
        out.put({"failed": f"{type(exc).__name__}: {exc}"})


def python_generator(
    mode: str, port: int, pool: list[tuple[str, bytes]], processes: int, arg: float, seconds: float
) -> list[dict[str, Any]]:
    """Split `pool` over `processes`; `arg` is connections per process (closed) or req/s per process (open)."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    children = [
        context.Process(target=_child, args=(mode, port, pool[i::processes], arg, seconds, out))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    results = [out.get() for _ in children]
    failed = [r["failed"] for r in results if "failed" in r]
    if failed:
        raise SystemExit(f"the generator failed: {failed[0]}")
    for child in children:
        child.join()
    return results


# --- wrk -----------------------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  local every = tonumber(args[2])
  reqs, n, i, acked, errors, ids = {}, 0, 0, 0, 0, {}
  for line in io.lines(args[1]) do
    if n % every == id then
      local signature, body = line:match("^(%S+) (.*)$")
      table.insert(reqs, wrk.format("POST", nil,
        {["content-type"] = "application/json", ["x-ghl-signature"] = signature}, body))
    end
    n = n + 1
  end
end
function request()
  i = i + 1
  if i > #reqs then i = 1; wrapped = true end
  return reqs[i]
end
function response(status, headers, body)
  local ack = status == 200 and body:match('"id":"([^"]+)"')
  if ack then acked = acked + 1; table.insert(ids, ack) else errors = errors + 1 end
end
function done(summary, latency, requests)
  local out = io.open(os.getenv("LB_ACKED_FILE"), "w")
  local errors_total, wrapped_any = 0, false
  for _, thread in ipairs(threads) do
    for _, ack in ipairs(thread:get("ids")) do out:write(ack, "\n") end
    errors_total = errors_total + thread:get("errors")
    wrapped_any = wrapped_any or thread:get("wrapped") == true
  end
  out:close()
  io.write(string.format("LB requests=%d errors=%d wrapped=%s\n", summary.requests, errors_total,
    tostring(wrapped_any)))
end
"""


def wrk_max_rate(
    wrk: str, url: str, pool: list[tuple[str, bytes]], connections: int, seconds: float, tmp: Path
) -> dict[str, Any]:
    pool_file, script, acked_file = tmp / "pool.txt", tmp / "wrk.lua", tmp / "acked.txt"
    pool_file.write_bytes(b"".join(signature.encode() + b" " + raw + b"\n" for signature, raw in pool))
    script.write_text(WRK_SCRIPT)
    threads = 2
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:.0f}s", "-s", str(script)]
    command += [url + PATH, str(pool_file), str(threads)]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "LB_ACKED_FILE": str(acked_file)}
    )
    elapsed = time.perf_counter() - started
    summary = next(line for line in done.stdout.splitlines() if line.startswith("LB "))
    fields = dict(part.split("=") for part in summary.split()[1:])
    if fields["wrapped"] == "true":
        raise SystemExit("wrk went through the whole pool: raise --pool so every request is a new webhook")
    rate = next(line for line in done.stdout.splitlines() if line.startswith("Requests/sec:"))
    acked = acked_file.read_text().split()
    return {
        "done": int(fields["requests"]),
        "elapsed": elapsed,
        "acked": acked,
        "errors": int(fields["errors"]),
        "rate": float(rate.split()[1]),
    }


# --- servers -------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


def start(command: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    """The server's output goes to a file: a pipe nobody reads would block the server once it filled up."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    wait_ready(url, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def configure(url: str, locations: Sequence[Location]) -> None:
    """Through the admin API, as an operator would: accounts, the CRM plugin on, location and webhook key."""
    headers = {"authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url + "/admin/api", headers=headers, timeout=30) as admin:
        for location in locations:
            admin.post("/accounts", json={"id": location.account, "name": location.account}).raise_for_status()
            admin.put(f"/accounts/{location.account}/plugins/crmconnect", json={"enabled": True}).raise_for_status()
            admin.patch(
                f"/accounts/{location.account}/plugins/crmconnect/settings",
                json={"location_id": location.location_id, "webhook_ed25519_public_key": location.public_key},
            ).raise_for_status()


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    max_rate: float = 0.0
    cpu_ms: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    acked: list[str] = field(default_factory=list)
    errors: int = 0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(side: Side, url: str, pid: int, locations: Sequence[Location], args: argparse.Namespace, tmp: Path) -> None:
    port = int(url.rsplit(":", 1)[1])
    wrk = shutil.which("wrk")
    # warm-up: imports, caches, the first connections
    python_generator("closed", port, signed_pool(locations, 400), 2, 8, 5.0)
    pool = signed_pool(locations, args.pool)
    profiler = None
    if args.profile and not side.name.startswith("bare"):
        profiler = subprocess.Popen(
            [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--duration", f"{args.seconds:.0f}", "--rate", "250",
             "--format", "raw", "--nonblocking", "--threads", "-o", args.profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu_before = cpu_seconds(pid)
    if wrk and not args.python_generator:
        result = wrk_max_rate(wrk, url, pool, args.connections, args.seconds, tmp)
        side.max_rate = result["rate"]
        side.acked += result["acked"]
        side.errors += result["errors"]
        done = result["done"]
    else:
        results = python_generator(
            "closed", port, pool, args.processes, args.connections // args.processes, args.seconds
        )
        done = sum(r["done"] for r in results)
        side.max_rate = done / max(r["elapsed"] for r in results)
        side.acked += [ack for r in results for ack in r["acked"]]
        side.errors += sum(r["errors"] for r in results)
    side.cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, done)
    if profiler is not None:
        profiler.wait(60)
    time.sleep(1.0)
    steady = signed_pool(locations, int(args.rate * args.seconds))
    results = python_generator("open", port, steady, args.processes, args.rate / args.processes, args.seconds)
    latencies = [lat for r in results for lat in r["latencies"]]
    side.p50, side.p99, side.p999 = (percentile(latencies, q) * 1000 for q in (0.5, 0.99, 0.999))
    side.acked += [ack for r in results for ack in r["acked"]]
    side.errors += sum(r["errors"] for r in results)


def check_exactly_once(database: Path | str, acked: list[str]) -> tuple[int, int, int]:
    """(acknowledged distinct, stored exactly once, missing or doubled) in a SQLite file or a PostgreSQL URL."""
    wanted = set(acked)
    counts: dict[str, int] = dict.fromkeys(wanted, 0)
    query = "SELECT external_id FROM events WHERE source = 'crmconnect' AND external_id LIKE 'webhook:%'"
    if isinstance(database, Path):
        connection = sqlite3.connect(database)
        rows = connection.execute(query).fetchall()
        connection.close()
    else:
        import psycopg

        with psycopg.connect(database) as pg:
            rows = pg.execute(query).fetchall()
    for (external_id,) in rows:
        if external_id in counts:
            counts[external_id] += 1
    once = sum(1 for count in counts.values() if count == 1)
    return len(wanted), once, len(wanted) - once


@contextlib.contextmanager
def durable_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster with the server's durable defaults; the URL of an empty database."""
    sys.path.insert(0, str(HERE.parent))
    from tests.postgres_cluster import Cluster, running_cluster

    class Durable(Cluster):
        def start_server(self) -> None:  # the tests' cluster turns fsync off; a benchmark of durability must not
            options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c max_connections=200"
            log = str(self.data_dir / "log")
            self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-o", options, "-l", log, "-w", "start")

    with running_cluster() as cluster:
        cluster._run("pg_ctl", "-D", str(cluster.data_dir / "data"), "-m", "fast", "-w", "stop")
        durable = Durable(cluster.bin_dir, cluster.data_dir, cluster.port, cluster.run_as)
        durable.start_server()
        yield durable.create_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=500.0, help="offered rate of the open-loop phase")
    parser.add_argument("--locations", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64, help="max-rate phase, all generator processes")
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2), help="Python generator")
    parser.add_argument("--pool", type=int, default=100_000, help="signed webhooks prepared for the max-rate phase")
    parser.add_argument("--python-generator", action="store_true", help="even when wrk is installed")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy (pip install py-spy) the server's max-rate phase into FILE (raw)"
    )
    args = parser.parse_args()
    python = sys.executable
    uvicorn_flags = ["--log-level", "warning", "--no-access-log"]
    wrk = None if args.python_generator else shutil.which("wrk")
    print(
        f"configuration: {os.cpu_count()} cores; server = `ledgerbridge serve --no-sandboxes`"
        f" ({'SQLite' if args.store == 'sqlite' else 'PostgreSQL 15, fsync on'}, defaults)"
        f" with {args.locations} accounts/locations, each its own Ed25519 key; baseline = bare Starlette under"
        f" uvicorn (same loop and HTTP implementation); bodies = HighLevel OrderCreate, {REPEATS:.0%} repeats;"
    )
    print(
        f"  max rate: {'wrk ' + wrk if wrk else 'Python generator'} ({args.connections} connections,"
        f" {args.seconds:.0f} s, closed loop); latency: Python generator, {args.processes} processes,"
        f" {args.rate:.0f} req/s offered for {args.seconds:.0f} s, open loop, timed from each request's due time"
        + (
            ""
            if wrk or args.python_generator
            else "; wrk not found: `apt-get install -y wrk` for a generator that is surely not the limit"
        )
    )

    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        data = tmp / "data"
        env = {**os.environ, "LEDGERBRIDGE_ADMIN_TOKEN": ADMIN}
        database: Path | str = data / "ledgerbridge.db"
        if args.store == "postgresql":
            database = env["LEDGERBRIDGE_DATABASE_URL"] = stack.enter_context(durable_postgres())
        serve = [python, "-m", "ledgerbridge.cli", "serve", "--data-dir", str(data), "--no-sandboxes"]
        locations = [Location(f"acct{n}", f"benchLocation{n:04d}") for n in range(args.locations)]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [*serve, "--port", str(port), "--log-level", "warning"]
        process = start(command, env, url, tmp / "server.log")
        try:
            configure(url, locations)
        finally:
            stop(process)

        sides: dict[str, Side] = {}
        for name in ("bare Starlette endpoint", "ledgerbridge signed CRM webhook"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            if name.startswith("bare"):
                command = [python, "-m", "uvicorn", "--app-dir", str(HERE), "intake:bare_app", "--port", str(port)]
                command += uvicorn_flags
            else:
                command = [*serve, "--port", str(port), "--log-level", "warning"]
            process = start(command, env, url, tmp / "server.log")
            try:
                sides[name] = side = Side(name)
                measure(side, url, process.pid, locations, args, tmp)
            finally:
                stop(process)

        for side in sides.values():
            print(
                f"{side.name:<32} max {side.max_rate:>7.0f} req/s   server CPU {side.cpu_ms:5.2f} ms/req"
                f"   at {args.rate:.0f} req/s: p50 {side.p50:6.2f} ms  p99 {side.p99:7.2f} ms"
                f"  p99.9 {side.p999:7.2f} ms   errors {side.errors}"
            )
        bare, durable = sides["bare Starlette endpoint"], sides["ledgerbridge signed CRM webhook"]
        print(f"ratio max rate durable / bare: {durable.max_rate / bare.max_rate:.2f} (target >= 0.25)")
        print(f"p99 at {args.rate:.0f} req/s: {durable.p99:.1f} ms (target < 50 ms)")
        log_lines = (tmp / "server.log").read_text(errors="replace").splitlines()
        print(f"server log: {len(log_lines)} lines{' (last: ' + log_lines[-1][:160] + ')' if log_lines else ''}")
        wanted, once, bad = check_exactly_once(database, durable.acked)
        print(f"acknowledged webhooks {wanted} (distinct), stored exactly once {once}, missing or doubled {bad}")
        if bad or durable.errors:
            raise SystemExit("MISMATCH: an acknowledged event was lost or stored twice, or a request failed")


if __name__ == "__main__":
    main()
