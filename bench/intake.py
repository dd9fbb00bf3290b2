"""Webhook intake throughput: durable, de-duplicated intake vs a bare Starlette endpoint, same run.

Both servers run under uvicorn in their own process on loopback; one async client drives both with the same
requests (10 % of them repeats of earlier webhooks). Prints requests per second, p50/p99 latency and the
ratio, then checks that every acknowledged event is committed exactly once. Target: ratio >= 0.5.

    .venv/bin/python bench/intake.py [--requests 6000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from ledgerbridge.testing import free_port

HERE = Path(__file__).parent


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


def bodies(count: int) -> list[bytes]:
    unique = [
        (
            f'{{"type":"OrderCreate","locationId":"loc-bench","webhookId":"{uuid.uuid4()}","_id":"order-{n}",'
            f'"amount":99.5,"currency":"USD","contactSnapshot":{{"email":"buyer{n}@example.com"}},'
            f'"items":[{{"name":"Plan","qty":1,"price":{{"amount":99.5}}}}]}}'
        ).encode()
        for n in range(count - count // 10)
    ]
    return unique + unique[: count // 10]


async def drive(url: str, payloads: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    stored = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal stored
            while not queue.empty():
                payload = queue.get_nowait()
                started = time.perf_counter()
                reply = await client.post(
                    "/plugins/intake_source/webhooks", content=payload, headers={"content-type": "application/json"}
                )
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    raise SystemExit(f"unexpected {reply.status_code}: {reply.text}")
                stored += reply.json()["stored"] is True

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(payloads) / elapsed, latencies, stored


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, rps: float, latencies: list[float]) -> None:
    print(
        f"{name:<34} {rps:>9.0f} req/s   p50 {percentile(latencies, 0.5) * 1000:6.2f} ms"
        f"   p99 {percentile(latencies, 0.99) * 1000:7.2f} ms   mean {statistics.fmean(latencies) * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    python = sys.executable
    uvicorn_flags = ["--log-level", "warning", "--no-access-log"]

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        env = {
            **os.environ,
            "LEDGERBRIDGE_LOAD_PLUGINS": "intake_source",
            "LEDGERBRIDGE_ADMIN_TOKEN": "bench-admin-token-0001",
        }
        cli = [python, "-m", "ledgerbridge.cli"]
        common = ["--data-dir", str(data), "--plugins-dir", str(HERE / "plugins")]
        subprocess.run([*cli, "accounts", "create", "Bench", *common], env=env, check=True, capture_output=True)
        connection = sqlite3.connect(data / "ledgerbridge.db")
        connection.execute("UPDATE plugin_accounts SET external_id = 'loc-bench' WHERE plugin = 'intake_source'")
        connection.commit()
        connection.close()

        results = {}
        for name in ("bare Starlette endpoint", "ledgerbridge durable intake"):
            port = free_port()
            if name.startswith("bare"):
                command = [
                    python,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    str(HERE / "plugins"),
                    "bare:app",
                    "--port",
                    str(port),
                    *uvicorn_flags,
                ]
            else:
                command = [*cli, "serve", *common, "--port", str(port), "--no-sandboxes", "--log-level", "warning"]
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_ready(url + "/healthz", process)
                payloads = bodies(args.requests)
                asyncio.run(drive(url, payloads[:200], 8))  # warm-up (its events are counted below)
                results[name] = asyncio.run(drive(url, payloads, args.concurrency))
            finally:
                process.terminate()
                process.wait(30)

        print(
            f"{args.requests} webhooks ({args.requests // 10} of them repeats), {args.concurrency} concurrent,"
            f" uvicorn on loopback, {os.cpu_count()} cores"
        )
        for name, (rps, latencies, _) in results.items():
            report(name, rps, latencies)
        ratio = results["ledgerbridge durable intake"][0] / results["bare Starlette endpoint"][0]
        print(f"ratio durable / bare: {ratio:.2f} (target >= 0.5)")

        connection = sqlite3.connect(data / "ledgerbridge.db")
        events = connection.execute("SELECT COUNT(*), COUNT(DISTINCT external_id) FROM events").fetchone()
        connection.close()
        unique = args.requests - args.requests // 10
        print(
            f"events committed: {events[0]} (distinct {events[1]}), expected {unique};"
            f" acknowledged as new in the timed run: {results['ledgerbridge durable intake'][2]}"
        )
        if events[0] != unique or events[1] != unique:
            raise SystemExit("MISMATCH: an acknowledged event was lost or stored twice")


if __name__ == "__main__":
    main()
