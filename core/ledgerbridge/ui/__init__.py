"""The web UI: server-rendered pages (Starlette + Jinja2) for signing in, choosing an account,
Settings › Integrations and Activity. See docs/ui.md."""

from ledgerbridge.ui.routes import routes
from ledgerbridge.ui.session import check_csrf_token, session_middleware

__all__ = ["check_csrf_token", "routes", "session_middleware"]
