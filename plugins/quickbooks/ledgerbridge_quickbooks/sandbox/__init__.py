"""A local emulator of QuickBooks Online: Accounting API v3, OAuth 2.0, webhooks, throttles and faults.

Standalone by design: it shares no code with the plugin's client (see docs/sandbox-quickbooks.md).
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
