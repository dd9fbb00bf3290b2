"""The Starlette application factory."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from ledgerbridge.observability import endpoint as metrics_endpoint
from ledgerbridge.observability.middleware import RequestIdMiddleware, webhook_paths
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.sandboxes import serve_arguments
from ledgerbridge.settings import Settings
from ledgerbridge.ui import routes as ui_routes
from ledgerbridge.ui import session_middleware
from ledgerbridge.web import admin, health, openapi
from ledgerbridge.web.auth import SESSION_KEY, admin_token_for, secure_data_dir
from ledgerbridge.web.browser_only import BrowserOnly
from ledgerbridge.web.csrf import CsrfGuard
from ledgerbridge.web.errors import EXCEPTION_HANDLERS
from ledgerbridge.web.limits import BodySizeLimit
from ledgerbridge.web.sessions import SessionGuard

logger = logging.getLogger("ledgerbridge.web")


def create_app(
    settings: Settings | None = None,
    *,
    plugins: PluginManager | None = None,
    runtime: Runtime | None = None,
    mount_sandboxes: bool = True,
) -> Starlette:
    """Build the server: health probes, the admin API, each plugin's routes and, in sandbox mode, the
    vendor sandboxes. Workers and plugin start-up run in the app's lifespan."""
    settings = settings or (runtime.settings if runtime else Settings.from_environment())
    secure_data_dir(settings.data_dir)
    admin_token = admin_token_for(settings)  # refuses a weak operator-set token before anything starts
    if runtime is None:
        plugins = plugins or PluginManager.discover(plugins_dir=settings.plugins_dir)
        runtime = Runtime(settings, plugins)
    sandbox_apps = _sandbox_apps(runtime) if mount_sandboxes else {}
    runtime.sandbox_urls.update({name: f"{settings.base_url}/sandbox/{name}" for name in sandbox_apps})

    routes: list[BaseRoute] = [
        *health.routes,
        *metrics_endpoint.routes,
        Mount("/admin/api", routes=[*admin.routes, *openapi.routes]),
    ]
    for name in runtime.plugins.names():
        plugin_routes = runtime.plugins.routes(name, runtime.plugin_context(name))
        if plugin_routes:
            routes.append(Mount(f"/plugins/{name}", routes=list(plugin_routes)))
    routes += [Mount(f"/sandbox/{name}", app=app) for name, app in sandbox_apps.items()]
    routes += ui_routes()  # last: the UI ends with a catch-all that answers unknown paths with a 404 page

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for sandbox in sandbox_apps.values():
                # Mount does not run a mounted app's lifespan; the sandboxes need theirs (webhook senders)
                await stack.enter_async_context(sandbox.router.lifespan_context(sandbox))
            # registered before starting: a start that fails half-way still stops what it began, and the
            # failure propagates so the server exits (non-zero) instead of hanging without serving
            stack.push_async_callback(runtime.stop)
            await runtime.start()
            app.state.ready = True
            yield
            app.state.ready = False

    webhooks = webhook_paths(runtime.plugins.names())
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(RequestIdMiddleware, webhooks=webhooks),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
            Middleware(
                BrowserOnly,
                skip_paths=webhooks,
                middleware=[
                    session_middleware(settings),
                    Middleware(SessionGuard, signed_in_key=SESSION_KEY),
                    Middleware(
                        CsrfGuard,
                        signed_in_key=SESSION_KEY,
                        base_url=settings.base_url,
                        exempt=tuple(f"/sandbox/{name}/" for name in sandbox_apps),
                    ),
                ],
            ),
        ],
    )
    app.state.runtime = runtime
    app.state.ready = False
    app.state.max_body_bytes = settings.max_body_bytes
    app.state.max_json_depth = settings.max_json_depth
    app.state.admin_token = admin_token
    app.state.metrics_public = settings.metrics_public
    app.state.sandbox_urls = dict(runtime.sandbox_urls)
    return app


def _sandbox_apps(runtime: Runtime) -> dict[str, Any]:
    """Sandbox mode (no vendor credentials anywhere: every sandbox mounted) or production (none), never a mix."""
    specs = runtime.plugins.sandboxes()
    configured = sorted(name for name, spec in specs.items() if not spec.mount_in_serve)
    if configured:
        logger.info("production mode: real credentials for %s; no sandbox is mounted", ", ".join(configured))
        return {}
    if specs:
        logger.warning(
            "SANDBOX MODE: no vendor credentials are configured; %s are local emulators mounted under /sandbox/",
            ", ".join(sorted(specs)),
        )
    apps = {}
    runtime.sandbox_specs.update(specs)
    for name, spec in specs.items():
        parser = argparse.ArgumentParser(prog=f"sandbox {name}")
        spec.add_arguments(parser)
        args = parser.parse_args(serve_arguments(spec, runtime.settings.data_dir))
        apps[name] = spec.create_app(args, f"{runtime.settings.base_url}/sandbox/{name}")
    return apps
