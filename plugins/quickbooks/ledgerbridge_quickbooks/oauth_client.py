"""intuit-oauth's AuthClient, wrapped: blocking calls meant for `asyncio.to_thread`, typed results and errors."""

from __future__ import annotations

import json

import msgspec
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from . import errors
from .settings import Credentials


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: float = 3600
    x_refresh_token_expires_in: float = 8726400


class OAuthError(errors.RetryableError):
    """Intuit's OAuth server answered something other than 200 (and not invalid_grant)."""


class InvalidGrantError(errors.QuickBooksError):
    """The code or refresh token is invalid, expired or revoked."""


class OAuthApp:
    """One Intuit app. Every method blocks (requests): call it with `asyncio.to_thread`."""

    def __init__(self, credentials: Credentials, redirect_uri: str) -> None:
        self.credentials = credentials
        self.redirect_uri = redirect_uri

    def _client(self) -> AuthClient:
        # the constructor fetches the discovery document; `environment` may be its URL (the sandbox)
        try:
            return AuthClient(
                self.credentials.client_id,
                self.credentials.client_secret,
                self.redirect_uri,
                self.credentials.environment,
            )
        except AuthClientError as exc:
            raise _error(exc) from exc

    def authorize_url(self, state: str) -> str:
        url: str = self._client().get_authorization_url([Scopes.ACCOUNTING], state_token=state)
        return url

    def exchange(self, code: str, realm_id: str) -> TokenResponse:
        client = self._client()
        try:
            client.get_bearer_token(code, realm_id=realm_id)
        except AuthClientError as exc:
            raise _error(exc) from exc
        return _tokens(client)

    def refresh(self, refresh_token: str) -> TokenResponse:
        client = self._client()
        try:
            client.refresh(refresh_token=refresh_token)
        except AuthClientError as exc:
            raise _error(exc) from exc
        return _tokens(client)

    def revoke(self, token: str) -> None:
        try:
            self._client().revoke(token=token)
        except AuthClientError as exc:
            raise _error(exc) from exc


def _tokens(client: AuthClient) -> TokenResponse:
    return TokenResponse(
        access_token=client.access_token,
        refresh_token=client.refresh_token,
        expires_in=float(client.expires_in or 3600),
        x_refresh_token_expires_in=float(client.x_refresh_token_expires_in or 8726400),
    )


def _error(exc: AuthClientError) -> errors.QuickBooksError:
    status = int(exc.status_code)
    code: str | None = None
    try:
        body = json.loads(exc.content or b"{}")
        code = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        pass
    message = f"Intuit OAuth HTTP {status}: {code or 'error'}"
    if status == 400 and code == "invalid_grant":
        return InvalidGrantError(message, status=status, code=code, intuit_tid=exc.intuit_tid)
    return OAuthError(message, status=status, code=code, intuit_tid=exc.intuit_tid)
