"""`ledgerbridge demo` end to end, as a user runs it: a subprocess on a free port in a temporary folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ledgerbridge.testing import free_port

VENDOR_ENV = ("LEDGERBRIDGE_QBO_", "LEDGERBRIDGE_CRM_", "LEDGERBRIDGE_ADMIN_TOKEN", "LEDGERBRIDGE_PUBLIC_URL")


def run_demo(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(VENDOR_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "ledgerbridge.cli", "demo", "--no-keep-running", "--data-dir", str(data_dir),
         "--port", str(port)],
        capture_output=True, text=True, timeout=60, env=env, cwd=data_dir.parent,
    )  # fmt: skip


def rows(output: str, section: str) -> list[list[str]]:
    """The cells of one table of the summary (the lines after its title's header and rule)."""
    block = output.split(section + "\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [re.split(r"\s{2,}", line.strip()) for line in block]


@pytest.mark.slow
def test_the_demo_plays_a_day_of_business_and_prints_both_sides(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    data_dir.mkdir()
    (data_dir / "left-over").write_text("from an earlier run")

    result = run_demo(data_dir, free_port())

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "Traceback" not in output + result.stderr
    assert not (data_dir / "left-over").exists()  # the folder was wiped at start
    assert (data_dir / "ledgerbridge.db").exists()

    payments = {row[0]: row for row in rows(output, "CRM payments -> QuickBooks sales receipts")}
    expected = {
        "payment: order form (one step)": ("ada@example.com", "132.00"),
        "payment: subscription, first charge": ("katherine@example.com", "49.00"),
        "payment: subscription renewal": ("katherine@example.com", "49.00"),
        "payment: membership checkout": ("margaret@example.com", "199.00"),
        "payment: calendar booking (meeting)": ("alan@example.com", "80.00"),
    }
    assert set(payments) == set(expected)
    receipts = set()
    for kind, (email, total) in expected.items():
        _, payer, crm_total, document, qb_total = payments[kind]
        assert (payer, crm_total, qb_total) == (email, total, total), payments[kind]
        assert re.fullmatch(r"SalesReceipt \d+", document), payments[kind]
        receipts.add(document)
    assert len(receipts) == 5  # one receipt each, the renewal included

    [invoice] = rows(output, "CRM invoices -> QuickBooks invoices")
    number, customer, status, crm_total, crm_paid, document, qb_total, qb_balance, qb_payments = invoice
    assert (number, customer, status) == ("invoice CRM-1001", "grace@example.com", "paid")
    # 2 x 150 with 10 % VAT, edited to a fixed 30 discount: (300 - 30) x 1.1 = 297
    assert (crm_total, crm_paid, qb_total, qb_balance) == ("297.00", "297.00", "297.00", "0.00")
    assert re.fullmatch(r"Invoice \d+", document)
    assert re.fullmatch(r"Payment \d+ = 297\.00", qb_payments)

    contacts = rows(output, "QuickBooks customers -> CRM contacts")
    imported = {row[2]: row for row in contacts if row[3] == "imported"}
    assert set(imported) == {"ada@example.com", "grace@example.com", "alan@example.com"}
    assert all(re.fullmatch(r"[A-Za-z0-9]{20}", row[4]) for row in contacts), contacts
    assert {row[2] for row in contacts if row[3] == "created for a CRM payment"} == {
        "katherine@example.com", "margaret@example.com",
    }  # fmt: skip

    [paid_in_books] = rows(output, "Invoices paid in QuickBooks by the QuickBooks user")
    assert paid_in_books[1:] == ["QB-2001", "Alan Turing", "500.00", "0.00"]
    # Alan's first invoice paid → one review request; Grace's CRM invoice is not her first (she owes an older one)
    [review] = rows(output, "Review requests sent in the CRM (a customer's first QuickBooks invoice paid)")
    assert review == [imported["alan@example.com"][4], "alan@example.com", "Email", "How did we do?"]
    assert "Deliveries: 0 pending, 0 dead letters" in output
    assert "/signin" in output and "/sandbox/quickbooks/companies/" in output


def test_a_failing_step_says_which_and_why_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_demo(tmp_path / "demo-data", busy.getsockname()[1])
    assert result.returncode == 1
    assert "demo failed at step 'start the server': cannot listen on 127.0.0.1:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
