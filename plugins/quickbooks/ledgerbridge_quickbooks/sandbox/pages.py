"""Read-only HTML pages: companies and a company's customers, invoices, sales receipts and payments."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .engine import Sandbox

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "Customer": [("Id", "Id"), ("DisplayName", "Name"), ("PrimaryEmailAddr.Address", "E-mail"),
                 ("Balance", "Balance"), ("Active", "Active")],
    "Invoice": [("Id", "Id"), ("DocNumber", "No."), ("CustomerRef.name", "Customer"), ("TxnDate", "Date"),
                ("TotalAmt", "Total"), ("Balance", "Balance"), ("PrivateNote", "Note")],
    "SalesReceipt": [("Id", "Id"), ("DocNumber", "No."), ("CustomerRef.name", "Customer"), ("TxnDate", "Date"),
                     ("TotalAmt", "Total")],
    "Payment": [("Id", "Id"), ("CustomerRef.name", "Customer"), ("TxnDate", "Date"), ("TotalAmt", "Total"),
                ("UnappliedAmt", "Unapplied")],
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


async def company_list(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    items = "".join(
        f"<li><a href='{escape(sandbox.base_url)}/companies/{escape(c.realm_id)}'>{escape(c.name)}</a>"
        f" ({escape(c.country)}, realm {escape(c.realm_id)})</li>"
        for c in sandbox.companies.values()
    )
    reset = (
        f"<form method='post' action='{escape(sandbox.base_url)}/reset'><p>The sandbox keeps its companies"
        f"{' across restarts' if sandbox.config.state_file else ''}. <button type='submit'>Reset the sandbox"
        "</button> forgets every company, token and connection (a connected server must connect again).</p></form>"
    )
    return _layout("QuickBooks sandbox companies", f"<ul>{items}</ul>{reset}")


async def reset_submit(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    sandbox.reset()
    return RedirectResponse(f"{sandbox.base_url}/companies", status_code=303)


async def company_page(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    company = sandbox.companies.get(request.path_params["realm"])
    if company is None:
        return _layout("Company not found", "<p>No such company.</p>", 404)
    sections = []
    for entity, columns in COLUMNS.items():
        head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(_get(row, path))}</td>" for path, _ in columns) + "</tr>"
            for row in company.table(entity).values()
        )
        sections.append(f"<h2>{escape(entity)}</h2><table border='1'><tr>{head}</tr>{rows}</table>")
    return _layout(f"{company.name} ({company.country}, realm {company.realm_id})", "".join(sections))


routes = [
    Route("/companies", company_list),
    Route("/companies/{realm}", company_page),
    Route("/reset", reset_submit, methods=["POST"]),
]
