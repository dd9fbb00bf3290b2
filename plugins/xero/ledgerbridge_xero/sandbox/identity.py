"""Xero's identity service state: authorisation codes (PKCE), access tokens (JWTs), rotating refresh tokens,
and the connections (tenants) each user granted each app."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .dates import iso_utc

ACCESS_SECONDS = 1800  # Xero access tokens live 30 minutes
REFRESH_SECONDS = 60 * 86400  # refresh tokens expire after 60 days unused
CODE_SECONDS = 300
GRACE_SECONDS = 1800  # a rotated refresh token still works for 30 minutes (Xero's grace period)


@dataclass
class Grant:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    auth_event_id: str
    tenant_ids: list[str]
    challenge: str | None
    challenge_method: str | None
    expires_at: float


@dataclass
class Session:
    """One authorisation (one consent) of a user for an app: its current tokens and what they may reach."""

    client_id: str
    user_id: str
    auth_event_id: str
    scope: str
    access_token: str = ""
    access_expires_at: float = 0.0
    refresh_token: str = ""
    refresh_expires_at: float = 0.0
    previous_refresh: dict[str, float] = field(default_factory=dict)  # rotated token → end of its grace
    live_access: dict[str, float] = field(default_factory=dict)  # every unexpired access token (JWTs outlive rotation)
    revoked: bool = False


@dataclass
class Connection:
    id: str
    client_id: str
    user_id: str
    tenant_id: str
    auth_event_id: str
    created: float
    updated: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if (method or "plain") == "S256":
        return secrets.compare_digest(_b64(hashlib.sha256(verifier.encode()).digest()), challenge)
    return secrets.compare_digest(verifier, challenge)


class Identity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.grants: dict[str, Grant] = {}
        self.sessions: list[Session] = []
        self.connections: dict[str, Connection] = {}
        self.token_calls = 0

    def issue_code(self, grant: Grant) -> str:
        self.grants[grant.code] = grant
        return grant.code

    def take_code(self, code: str) -> Grant | None:
        grant = self.grants.pop(code, None)
        if grant is None or grant.expires_at < self.clock():
            return None
        return grant

    def _jwt(self, session: Session) -> str:
        now = int(self.clock())
        header = {"alg": "RS256", "kid": "sandbox", "typ": "JWT"}
        claims = {
            "nbf": now,
            "exp": now + ACCESS_SECONDS,
            "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources",
            "client_id": session.client_id,
            "sub": session.user_id,
            "xero_userid": session.user_id,
            "authentication_event_id": session.auth_event_id,
            "jti": secrets.token_hex(16),
            "scope": session.scope.split(),
        }
        parts = [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(32))]
        return ".".join(parts)

    def start_session(self, grant: Grant) -> Session:
        session = Session(grant.client_id, grant.user_id, grant.auth_event_id, grant.scope)
        now = self.clock()
        for tenant_id in grant.tenant_ids:
            existing = next(
                (
                    c
                    for c in self.connections.values()
                    if (c.client_id, c.user_id, c.tenant_id) == (grant.client_id, grant.user_id, tenant_id)
                ),
                None,
            )
            if existing is not None:
                existing.auth_event_id, existing.updated = grant.auth_event_id, now
            else:
                connection_id = str(uuid.uuid4())
                self.connections[connection_id] = Connection(
                    connection_id, grant.client_id, grant.user_id, tenant_id, grant.auth_event_id, now, now
                )
        self.sessions.append(session)
        self._rotate(session)
        return session

    def _rotate(self, session: Session) -> None:
        now = self.clock()
        if session.refresh_token:
            session.previous_refresh[session.refresh_token] = now + GRACE_SECONDS
        session.access_token = self._jwt(session)
        session.access_expires_at = now + ACCESS_SECONDS
        session.live_access = {t: e for t, e in session.live_access.items() if e > now}
        session.live_access[session.access_token] = session.access_expires_at
        session.refresh_token = secrets.token_hex(32)
        session.refresh_expires_at = now + REFRESH_SECONDS

    def refresh(self, client_id: str, refresh_token: str) -> Session | None:
        now = self.clock()
        for session in self.sessions:
            if session.revoked or session.client_id != client_id:
                continue
            current = session.refresh_token == refresh_token and session.refresh_expires_at > now
            in_grace = session.previous_refresh.get(refresh_token, 0) > now
            if current or in_grace:
                self._rotate(session)
                return session
        return None

    def revoke(self, client_id: str, token: str) -> None:
        for session in self.sessions:
            if session.client_id == client_id and token in (session.refresh_token, session.access_token):
                session.revoked = True
                for connection_id, c in list(self.connections.items()):
                    if (c.client_id, c.user_id) == (client_id, session.user_id):
                        del self.connections[connection_id]

    def session_for_access(self, token: str) -> Session | None:
        for session in self.sessions:
            if not session.revoked and session.live_access.get(token, 0) > self.clock():
                return session
        return None

    def connections_of(self, session: Session) -> list[Connection]:
        return [
            c for c in self.connections.values() if (c.client_id, c.user_id) == (session.client_id, session.user_id)
        ]

    @staticmethod
    def describe(connection: Connection, tenant_name: str) -> dict[str, object]:
        return {
            "id": connection.id,
            "authEventId": connection.auth_event_id,
            "tenantId": connection.tenant_id,
            "tenantType": "ORGANISATION",
            "tenantName": tenant_name,
            "createdDateUtc": iso_utc(connection.created) + "0000",
            "updatedDateUtc": iso_utc(connection.updated) + "0000",
        }
