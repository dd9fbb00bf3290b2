"""Helpers for testing ledgerbridge and its plugins."""

from ledgerbridge.testing.servers import free_port, running_server, serve_in_thread

__all__ = ["free_port", "running_server", "serve_in_thread"]
