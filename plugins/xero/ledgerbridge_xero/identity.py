"""Xero's identity service, seen from the plugin: the authorize URL with PKCE, code exchange, refresh,
revocation and /connections, over the plugin's httpx client."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from . import errors
from .settings import SCOPES, Credentials


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: float = 1800
    token_type: str = "Bearer"
    scope: str = ""


class Tenant(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    tenant_id: str
    tenant_name: str | None = None
    tenant_type: str = "ORGANISATION"
    auth_event_id: str | None = None


class InvalidGrantError(errors.XeroError):
    """The code or refresh token is invalid, used or revoked."""


_tokens = msgspec.json.Decoder(TokenResponse)
_tenants = msgspec.json.Decoder(list[Tenant])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(credentials: Credentials, redirect_uri: str, state: str, challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": credentials.client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{credentials.endpoints.authorize}?{urlencode(query)}"


def auth_event_id(access_token: str) -> str | None:
    """The access token is a JWT; its `authentication_event_id` picks this consent's tenants out of /connections."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    value = claims.get("authentication_event_id") if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None


class IdentityClient:
    def __init__(self, http: httpx.AsyncClient, credentials: Credentials) -> None:
        self.http = http
        self.credentials = credentials
        self.refreshes = 0

    async def _token_call(self, form: dict[str, str]) -> TokenResponse:
        try:
            response = await self.http.post(
                self.credentials.endpoints.token,
                data=form,
                auth=(self.credentials.client_id, self.credentials.client_secret),
            )
        except httpx.HTTPError as exc:
            raise errors.UnavailableError(f"Xero's token endpoint is unreachable: {exc}") from exc
        if response.status_code == 200:
            return _tokens.decode(response.content)
        code = _error_code(response)
        if response.status_code == 400 and code == "invalid_grant":
            raise InvalidGrantError("Xero refused the grant (invalid_grant)", status=400)
        if response.status_code >= 500:
            raise errors.UnavailableError(
                f"Xero's token endpoint answered {response.status_code}", status=response.status_code
            )
        raise errors.XeroError(
            f"Xero's token endpoint answered {response.status_code}: {code}", status=response.status_code
        )

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> TokenResponse:
        return await self._token_call(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        )

    async def refresh(self, refresh_token: str) -> TokenResponse:
        self.refreshes += 1
        return await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, refresh_token: str) -> None:
        try:
            await self.http.post(
                self.credentials.endpoints.revocation,
                data={"token": refresh_token},
                auth=(self.credentials.client_id, self.credentials.client_secret),
            )
        except httpx.HTTPError as exc:
            raise errors.UnavailableError(f"Xero's revocation endpoint is unreachable: {exc}") from exc

    async def tenants(self, access_token: str, event_id: str | None) -> list[Tenant]:
        params = {"authEventId": event_id} if event_id else None
        try:
            response = await self.http.get(
                self.credentials.endpoints.connections,
                params=params,
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            raise errors.UnavailableError(f"Xero's /connections is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise errors.XeroError(f"Xero's /connections answered {response.status_code}", status=response.status_code)
        return _tenants.decode(response.content)

    async def disconnect(self, access_token: str, connection_id: str) -> None:
        try:
            await self.http.delete(
                f"{self.credentials.endpoints.connections}/{connection_id}",
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            raise errors.UnavailableError(f"Xero's /connections is unreachable: {exc}") from exc


def _error_code(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
