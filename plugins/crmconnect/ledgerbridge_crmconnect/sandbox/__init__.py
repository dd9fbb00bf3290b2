"""CRM Connect sandbox: a local emulator of HighLevel's API v2 as the crmconnect plugin uses it.

It shares no code with the plugin's client on purpose: an emulator that borrows the client's assumptions
hides the bugs it exists to catch. See docs/sandbox-crmconnect.md.
"""

from ledgerbridge_crmconnect.sandbox.app import create_app
from ledgerbridge_crmconnect.sandbox.cli import add_arguments, config_from_args, startup_banner
from ledgerbridge_crmconnect.sandbox.config import LocationSeed, OAuthAppSeed, SandboxConfig
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine

__all__ = [
    "LocationSeed",
    "OAuthAppSeed",
    "SandboxConfig",
    "SandboxEngine",
    "add_arguments",
    "config_from_args",
    "create_app",
    "startup_banner",
]
