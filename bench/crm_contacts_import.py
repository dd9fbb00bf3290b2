"""The server's contact import, end to end: QuickBooks customers until each one is a CRM contact.

A QuickBooks sandbox company is seeded with N customers (each with its own e-mail); the real server (Runtime
with the quickbooks and crmconnect plugins, the user's defaults: worker count, the plugins' limiters, the
import's tick) is connected to it the way a user connects (QB Connect's consent form) and to the CRM Connect
sandbox with a location token. Timing runs from the QuickBooks connection until the CRM holds N contacts.

Each sandbox runs in its own process (as the vendors run on their own machines), so this process's CPU time
and peak RSS are the server's. The CRM sandbox enforces HighLevel's burst limit, 100 requests per 10 s per
location, with its time compressed by `--time-scale` (15 by default: 10,000 contacts at the real 10 requests/s
would take 17 minutes); the sandbox's rate-limit headers carry the scaled window, which the server's limiter
follows, so the ceiling is 100 per (10 / time scale) s. The sandbox's CPU per contact is printed beside the
server's. The CRM sandbox sends no webhooks here: its one-at-a-time sender, not the import, would be measured.
`--in-crm F` puts a fraction F of the customers' e-mails in the CRM location before the import (created
without webhooks, as contacts that were there before the server connected): those are updated, not created.
The import is done when the server holds a customer link for every customer. Prints figures; asserts nothing.

    .venv/bin/python bench/crm_contacts_import.py [--customers 10000] [--time-scale 15] [--in-crm 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.plugin import CrmConnectPlugin
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin

ADMIN = "bench-admin-token-0001"
CLIENT_ID, SECRET, VERIFIER = "bench-client", "bench-secret", "bench-verifier"
LOCATION, CRM_TOKEN = "benchLocation0000001", "pit-bench-token"
ACCOUNT = "acme"
CRM_LIMIT, CRM_WINDOW = 100, 10.0  # HighLevel's burst limit per location
QBO_PER_MINUTE, QBO_IN_FLIGHT = 500, 10  # Intuit's per company


# -- the sandboxes, each in its own process -------------------------------------------------------------


def _counting(app: Any, count: Any) -> Any:
    """The sandbox app, plus GET /_bench/count: "<records it holds> <API requests it received>"."""
    calls = 0

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        if scope["type"] == "http" and scope["path"] == "/_bench/count":
            body = f"{count()} {calls}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and not scope["path"].startswith(("/_control", "/oauth", "/.well-known")):
            calls += 1
        await app(scope, receive, send)

    return wrapped


async def _serve_qbo(port: int, server_url: str, customers: int) -> None:
    from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
    from ledgerbridge_quickbooks.sandbox import create_app as create_qbo_sandbox

    url = f"http://127.0.0.1:{port}"
    app = create_qbo_sandbox(SandboxConfig(
        base_url=url, requests_per_minute=QBO_PER_MINUTE, max_in_flight=QBO_IN_FLIGHT,
        apps=[AppRegistration(CLIENT_ID, SECRET, [f"{server_url}/plugins/quickbooks/callback"], VERIFIER,
                              webhook_url=f"{server_url}/plugins/quickbooks/webhooks")],
    ))  # fmt: skip
    engine = app.state.sandbox
    company = engine.create_company("Bench Books")
    books = engine.books(company.realm_id)
    for n in range(customers):
        books.create("Customer", {
            "DisplayName": f"Customer {n:06d}", "GivenName": "Customer", "FamilyName": f"{n:06d}",
            "PrimaryEmailAddr": {"Address": f"customer{n}@example.com"},
        })  # fmt: skip
    print(company.realm_id, flush=True)
    async with running_server(app, port=port):
        await asyncio.Event().wait()


async def _serve_crm(port: int, time_scale: float, already: int) -> None:
    from ledgerbridge_crmconnect.sandbox import LocationSeed
    from ledgerbridge_crmconnect.sandbox import SandboxConfig as CrmConfig
    from ledgerbridge_crmconnect.sandbox import create_app as create_crm_sandbox

    app = create_crm_sandbox(CrmConfig(
        base_url=f"http://127.0.0.1:{port}", time_scale=time_scale,
        locations=[LocationSeed(id=LOCATION, name="Bench CRM", token=CRM_TOKEN)],
        rate_limit_requests=CRM_LIMIT, rate_limit_interval_seconds=CRM_WINDOW,
    ))  # fmt: skip
    engine = app.state.sandbox
    from ledgerbridge_crmconnect.sandbox import contacts

    emit, engine.emit = engine.emit, lambda *args: None  # contacts that were there before: no webhooks
    with engine.lock:
        for n in range(0, already * 3, 3):  # every third customer, so they come up all through the import
            contacts.create(
                engine, LOCATION, {"email": f"Customer{n}@example.com", "firstName": "CRM", "lastName": f"{n}"}
            )
    engine.emit = emit
    print("ready", flush=True)
    async with running_server(_counting(app, lambda: len(engine.state.contacts)), port=port):
        await asyncio.Event().wait()


@contextlib.contextmanager
def sandbox(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """This script in `--serve` mode; yields its first line (the realm id or "ready") once it serves."""
    command = [sys.executable, __file__, "--serve", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"sandbox {args[0]} did not start")
        time.sleep(0.5)
        yield line, process
    finally:
        process.terminate()
        process.wait(10)


# -- the server, in this process --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the CRM sandbox's), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set of this process, MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def connect_quickbooks(http: httpx.AsyncClient, server_url: str, realm: str) -> None:
    start = await http.get(f"{server_url}/plugins/quickbooks/connect", params={"account": ACCOUNT},
                           headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
    page = await http.get(start.headers["location"])
    form = {unescape(k): unescape(v)
            for k, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text)}  # fmt: skip
    form.update({"email": "owner@example.com", "realm_id": realm, "action": "allow"})
    action = unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
    consent = await http.post(action, data=form)
    done = await http.get(consent.headers["location"])
    if done.status_code not in (200, 303):
        raise RuntimeError(f"QB Connect failed: {done.status_code} {done.text[:200]}")


async def run(customers: int, time_scale: float, workers: int, in_crm: float) -> None:
    already = min(customers // 3, round(customers * in_crm))
    server_port, qbo_port, crm_port = free_port(), free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    qbo_url, crm_url = f"http://127.0.0.1:{qbo_port}", f"http://127.0.0.1:{crm_port}"
    os.environ.update({
        "LEDGERBRIDGE_QBO_CLIENT_ID": CLIENT_ID, "LEDGERBRIDGE_QBO_CLIENT_SECRET": SECRET,
        "LEDGERBRIDGE_QBO_ENVIRONMENT": qbo_url + "/.well-known/openid_configuration",
        "LEDGERBRIDGE_QBO_VERIFIER_TOKEN": VERIFIER, "LEDGERBRIDGE_CRM_SANDBOX": "0",
    })  # fmt: skip
    seeding = time.monotonic()
    with sandbox("qbo", str(qbo_port), server_url, str(customers)) as (realm, _), \
            sandbox("crm", str(crm_port), str(time_scale), str(already)) as (_, crm_process), \
            tempfile.TemporaryDirectory() as data:  # fmt: skip
        print(f"seeded {customers} QuickBooks customers in {time.monotonic() - seeding:.1f} s", flush=True)
        settings = Settings(data_dir=Path(data), admin_token=ADMIN, public_url=server_url, port=server_port,
                            workers=workers)  # fmt: skip
        manager = PluginManager()
        manager.register(QuickBooksPlugin, "quickbooks")
        manager.register(CrmConnectPlugin, "crmconnect")
        runtime = Runtime(settings, manager)
        app = create_app(settings, runtime=runtime, mount_sandboxes=False)
        async with running_server(app, port=server_port), httpx.AsyncClient(timeout=60) as http:
            await runtime.create_account(ACCOUNT, "Acme", ["quickbooks", "crmconnect"])
            ctx = await runtime.plugin_context("crmconnect").account(ACCOUNT)
            assert ctx is not None
            await ctx.update_settings(api_base_url=crm_url, sandbox=True)
            response = await http.post(f"{server_url}/plugins/crmconnect/accounts/{ACCOUNT}/connect",
                                       json={"location_id": LOCATION, "token": CRM_TOKEN},
                                       headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
            if response.status_code != 200:
                raise RuntimeError(f"CRM connect failed: {response.text}")
            ceiling = CRM_LIMIT / (CRM_WINDOW / time_scale)
            print(f"Configuration: {workers} workers (the default is {Settings().workers}); CRM sandbox "
                  f"{CRM_LIMIT} requests per {CRM_WINDOW:g} s per location at time scale {time_scale:g} "
                  f"(a ceiling of {ceiling:.0f} requests/s); QuickBooks {QBO_PER_MINUTE}/min, {QBO_IN_FLIGHT} in "
                  "flight, unscaled; the import's tick and the CRM limiter at their defaults; CRM webhooks off; "
                  f"{already} of the customers' e-mails already in the CRM location")  # fmt: skip
            rss_before, _ = rss_mb()
            load = os.getloadavg()
            cpu0, started = time.process_time(), time.monotonic()
            await connect_quickbooks(http, server_url, realm)
            crm_cpu0 = cpu_seconds(crm_process.pid)
            samples: list[tuple[int, float, float, float]] = [(0, 0.0, 0.0, 0.0)]  # contacts, cpu s, wall s, crm cpu s
            done = 0
            while done < customers:
                await asyncio.sleep(0.5)
                done = await ctx.count_links("customer")
                crm_cpu = cpu_seconds(crm_process.pid) - crm_cpu0
                samples.append((done, time.process_time() - cpu0, time.monotonic() - started, crm_cpu))
            elapsed = time.monotonic() - started
            await asyncio.sleep(2.0)  # anything still in flight would show as a contact too many
            final, calls = map(int, (await http.get(f"{crm_url}/_bench/count")).text.split())
            _, rss_peak = rss_mb()
            dead = await runtime.store.list_deliveries(ACCOUNT, "dead")

    rate = customers / elapsed
    print(f"contacts              {final} in the CRM for {customers} customers, {already} of them there before "
          f"({len(dead)} dead deliveries)")  # fmt: skip
    print(f"CRM API requests      {calls} ({calls / customers:.2f} per contact, 429s and the connection's included)")
    print(f"elapsed               {elapsed:.1f} s (from the QuickBooks connection to the last contact)")
    print(f"rate                  {rate:.1f} contacts/s")
    print(
        f"CRM ceiling           {ceiling:.1f} requests/s ({CRM_LIMIT} per {CRM_WINDOW:g} s / time scale {time_scale:g})"
    )
    print(f"rate / ceiling        {rate / ceiling:.3f} (contacts/s against requests/s: at most 1 / calls per contact)")
    print(f"requests / ceiling    {calls / elapsed / ceiling:.3f} (how much of the location's budget the import used)")
    first = next(s for s in samples if s[0] > 0)
    t10 = next(s for s in samples if s[0] >= 0.1 * customers)
    t90 = next(s for s in samples if s[0] >= 0.9 * customers)
    steady = (t90[0] - t10[0]) / max(t90[2] - t10[2], 1e-9)
    print(
        f"first contact after   {first[2]:.1f} s (the QuickBooks connection, its first page, the directory's listing)"
    )
    print(f"steady rate           {steady:.1f} contacts/s from 10 % to 90 % of the contacts ({steady / ceiling:.3f} "
          "of the ceiling)")  # fmt: skip
    for label, low, high in (("start", 0.0, 0.2), ("end", 0.8, 1.0)):
        a = next(s for s in samples if s[0] >= low * customers)
        b = next(s for s in samples if s[0] >= high * customers)
        per = (b[1] - a[1]) / max(b[0] - a[0], 1) * 1000
        crm = (b[3] - a[3]) / max(b[0] - a[0], 1) * 1000
        print(f"server CPU / contact  {per:.2f} ms at the {label} ({low:.0%}–{high:.0%} of the contacts; "
              f"the CRM sandbox's process: {crm:.2f} ms)")  # fmt: skip
    print(f"server RSS            {rss_before:.1f} MB before connecting, peak {rss_peak:.1f} MB")
    print(f"machine load          {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-minute average, "
          f"{os.cpu_count()} CPUs): a busy machine starves the server, not the CRM's limit")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        kind, port = sys.argv[2], int(sys.argv[3])
        if kind == "qbo":
            asyncio.run(_serve_qbo(port, sys.argv[4], int(sys.argv[5])))
        else:
            asyncio.run(_serve_crm(port, float(sys.argv[4]), int(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=15.0, help="the CRM sandbox's time compression")
    parser.add_argument("--workers", type=int, default=Settings().workers, help="the server's default unless set")
    parser.add_argument("--in-crm", type=float, default=0.0, help="the share of customers already in the CRM (≤ 1/3)")
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.time_scale, args.workers, args.in_crm))


if __name__ == "__main__":
    main()
