"""Read-only HTML pages: the organisations, and one organisation's contacts, invoices, payments and bank
transactions (the control API is how a test or the demo acts as the Xero user)."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .engine import Sandbox

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "contacts": [("Name", "Name"), ("EmailAddress", "E-mail"), ("ContactStatus", "Status")],
    "invoices": [("InvoiceNumber", "No."), ("Contact.Name", "Contact"), ("DateString", "Date"), ("Status", "Status"),
                 ("Total", "Total"), ("AmountDue", "Due")],
    "payments": [("Invoice.InvoiceNumber", "Invoice"), ("Amount", "Amount"), ("Account.Code", "Account"),
                 ("Status", "Status")],
    "bank_transactions": [("Type", "Type"), ("Contact.Name", "Contact"), ("DateString", "Date"),
                          ("Reference", "Reference"), ("Total", "Total"), ("BankAccount.Code", "Account")],
}  # fmt: skip


def _get(row: dict[str, Any], path: str) -> str:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _layout(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status,
    )


async def organisation_list(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    base = sandbox.config.base_url
    items = "".join(
        f"<li><a href='{escape(base)}/organisations/{escape(o.tenant_id)}'>{escape(o.name)}</a>"
        f" ({escape(o.currency)}, tenant {escape(o.tenant_id)})</li>"
        for o in sandbox.organisations.values()
    )
    return _layout("Xero sandbox organisations", f"<ul>{items}</ul>")


async def organisation_page(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    organisation = sandbox.organisation(request.path_params["tenant"])
    if organisation is None:
        return _layout("Organisation not found", "<p>No such organisation.</p>", 404)
    sections = []
    for table, columns in COLUMNS.items():
        head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(_get(row, path))}</td>" for path, _ in columns) + "</tr>"
            for row in getattr(organisation, table).values()
        )
        title = table.replace("_", " ").capitalize()
        sections.append(f"<h2>{escape(title)}</h2><table border='1'><tr>{head}</tr>{rows}</table>")
    return _layout(f"{organisation.name} ({organisation.currency})", "".join(sections))


routes = [Route("/organisations", organisation_list), Route("/organisations/{tenant}", organisation_page)]
