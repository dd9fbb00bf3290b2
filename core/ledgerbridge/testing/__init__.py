"""Helpers for testing ledgerbridge and its plugins."""

from ledgerbridge.testing.servers import running_server, serve_in_thread

__all__ = ["running_server", "serve_in_thread"]
