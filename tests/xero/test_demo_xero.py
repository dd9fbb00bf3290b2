"""`ledgerbridge demo --books xero` end to end, as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ledgerbridge.testing import free_port

from ..demo.test_demo import VENDOR_ENV, rows


@pytest.mark.slow
def test_the_demo_plays_the_day_against_xero_and_prints_both_sides(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith((*VENDOR_ENV, "LEDGERBRIDGE_XERO_"))}
    result = subprocess.run(
        [sys.executable, "-m", "ledgerbridge.cli", "demo", "--books", "xero", "--no-keep-running", "--data-dir",
         str(data_dir), "--port", str(free_port())],
        capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "Traceback" not in output + result.stderr
    payments = rows(output, "CRM payments -> Xero money received (RECEIVE bank transactions)")
    assert len(payments) == 5
    assert all(re.fullmatch(r"BankTransaction [0-9a-f]{8}", row[3]) and row[2] == row[4] for row in payments), payments
    [invoice] = rows(output, "CRM invoices -> Xero sales invoices")
    assert invoice[0] == "invoice CRM-1001" and invoice[3] == invoice[6] == "297.00" and invoice[7] == "0.00"
    contacts = rows(output, "Xero contacts -> CRM contacts")
    assert {row[2] for row in contacts} >= {"ada@example.com", "grace@example.com", "alan@example.com"}
    assert all(row[4] != "(none)" for row in contacts), contacts
    reviews = rows(output, "Review requests sent in the CRM (a customer's first Xero invoice paid)")
    assert [row[1] for row in reviews] == ["alan@example.com"]  # Grace's first Xero invoice is still open
    assert "Deliveries: 0 pending, 0 dead letters" in output
