"""The UI's routes. Mount them last: the final catch-all answers unknown paths with a readable 404."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ledgerbridge.ui import accounts, activity, integrations, reviews, signin, sync_start
from ledgerbridge.ui.endpoint import form_route, json_route, page_route
from ledgerbridge.ui.render import error_page
from ledgerbridge.web.errors import json_error

STATIC_DIR = Path(__file__).parent / "static"
ACCOUNT = "/accounts/{account_id}"
PLUGIN = ACCOUNT + "/plugins/{plugin}"


async def favicon(request: Request) -> Response:
    """Browsers and tools ask for /favicon.ico whatever the page links; answer with the same icon."""
    headers = {"cache-control": "max-age=86400"}
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers=headers)


async def not_found(request: Request) -> Response:
    message = f"There is no page at {request.url.path}."
    if "text/html" in request.headers.get("accept", ""):
        return error_page(request, 404, message)
    return json_error(404, "Not Found")


def routes() -> list[BaseRoute]:
    return [
        Route("/", page_route(accounts.accounts_page), methods=["GET"]),
        Route("/signin", page_route(signin.signin_page, public=True), methods=["GET"]),
        Route("/signin", form_route(signin.signin_submit, public=True), methods=["POST"]),
        Route("/signout", form_route(signin.signout_submit, public=True), methods=["POST"]),
        Route("/accounts", form_route(accounts.create_account_submit), methods=["POST"]),
        Route(ACCOUNT, page_route(accounts.account_home), methods=["GET"]),
        Route(ACCOUNT + "/settings/integrations", page_route(integrations.integrations_page), methods=["GET"]),
        Route(PLUGIN + "/enabled", form_route(integrations.enabled_submit), methods=["POST"]),
        Route(PLUGIN + "/settings", form_route(integrations.setting_submit), methods=["POST"]),
        Route(PLUGIN + "/card.json", json_route(integrations.card_json), methods=["GET"]),
        Route(ACCOUNT + "/reviews/enabled", form_route(reviews.enabled_submit), methods=["POST"]),
        Route(ACCOUNT + "/reviews", form_route(reviews.settings_submit), methods=["POST"]),
        Route(ACCOUNT + "/backfill", form_route(sync_start.backfill_submit), methods=["POST"]),
        Route(ACCOUNT + "/activity", page_route(activity.activity_page), methods=["GET"]),
        Route(ACCOUNT + "/skipped/send", form_route(activity.send_skipped_submit), methods=["POST"]),
        Route(ACCOUNT + "/deliveries/{delivery_id}/retry", form_route(activity.retry_submit), methods=["POST"]),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/{path:path}", not_found),
    ]
