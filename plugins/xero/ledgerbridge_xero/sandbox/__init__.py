"""A local emulator of Xero: the identity service (OAuth 2.0 with PKCE, /connections), the Accounting API
the plugin uses, Xero's limits and error shapes, signed webhooks with intent to receive, and a control API.

Standalone by design: it shares no code with the plugin's client (see docs/xero.md).
"""

from .app import create_app
from .cli import add_arguments, config_from_args
from .config import AppRegistration, SandboxConfig
from .engine import Sandbox
from .webhooks import sign, verify

__all__ = [
    "AppRegistration",
    "Sandbox",
    "SandboxConfig",
    "add_arguments",
    "config_from_args",
    "create_app",
    "sign",
    "verify",
]
