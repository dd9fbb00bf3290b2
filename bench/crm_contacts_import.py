"""Import 10,000 contacts into the CRM Connect sandbox through the crmconnect plugin's client.

The sandbox runs in its own process (as HighLevel runs on its own machines) and enforces HighLevel's burst
limit, 100 requests per 10 s, with its time compressed by `--time-scale` so the run takes about a minute.
The figure that matters is the achieved rate as a share of the limit's ceiling. Prints figures; asserts
nothing.

    .venv/bin/python bench/crm_contacts_import.py [--contacts 10000] [--time-scale 15] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
from ledgerbridge import Contact
from ledgerbridge.testing import free_port
from ledgerbridge_crmconnect.client import CrmClient, StaticToken
from ledgerbridge_crmconnect.contacts import upsert

LOCATION = "benchLocation0000001"
TOKEN = "bench-pit-token"
LIMIT, WINDOW = 100, 10.0


@contextlib.contextmanager
def sandbox_process(time_scale: float) -> Iterator[str]:
    """`ledgerbridge sandbox crmconnect` on a free loopback port; yields its URL."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "ledgerbridge"), "sandbox", "crmconnect", "--port", str(port),
        "--location", f"{LOCATION}:{TOKEN}", "--rate-limit", f"{LIMIT}/{WINDOW:g}", "--time-scale", str(time_scale),
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def run(base_url: str, contacts: int, concurrency: int) -> tuple[float, int, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(contacts):
        queue.put_nowait(n)
    imported = 0
    async with CrmClient(base_url, StaticToken(TOKEN), max_retries=8) as client:

        async def worker() -> None:
            nonlocal imported
            while not queue.empty():
                n = queue.get_nowait()
                contact = Contact(name=f"Customer {n}", email=f"customer{n}@example.com")
                result = await upsert(client, LOCATION, contact)
                imported += bool(result.id)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, imported, client.requests_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=15.0, help="sandbox time compression")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations (slows the client)")
    args = parser.parse_args()

    if args.tracemalloc:
        tracemalloc.start()
    with sandbox_process(args.time_scale) as url:
        elapsed, imported, requests = asyncio.run(run(url, args.contacts, args.concurrency))
    traced_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else 0
    client_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    sandbox_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    ceiling = LIMIT / (WINDOW / args.time_scale)
    rate = imported / elapsed
    print(f"contacts imported     {imported} in {requests} requests ({requests - imported} answered 429 and retried)")
    print(f"elapsed               {elapsed:.1f} s")
    print(f"rate                  {rate:.1f} contacts/s")
    print(
        f"limit ceiling         {ceiling:.1f} requests/s ({LIMIT} per {WINDOW:g} s, sandbox time scale {args.time_scale})"
    )
    print(f"rate / ceiling        {rate / ceiling:.3f}")
    print(f"peak RSS              client {client_rss:.1f} MB, sandbox {sandbox_rss:.1f} MB")
    if args.tracemalloc:
        print(f"peak traced memory    {traced_peak / 1e6:.1f} MB (client, tracemalloc)")


if __name__ == "__main__":
    main()
