"""OAuth 2.0 grants, one-time authorization codes, access tokens and rotating refresh tokens."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from .clock import Clock

CODE_TTL = 300
REFRESH_TTL = 8726400  # 101 days, as Intuit reports x_refresh_token_expires_in
REFRESH_GRACE = 86400  # a rotated refresh token keeps working for 24 h
GRANT_CAP = 5 * 365 * 86400


@dataclass
class Grant:
    id: str
    client_id: str
    realm_id: str
    email: str
    scope: str
    created_at: float
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    grant_id: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: str
    expires_at: float


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    expires_at: float


@dataclass
class TokenStore:
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)

    def new_grant(self, clock: Clock, client_id: str, realm_id: str, email: str, scope: str) -> Grant:
        grant = Grant(secrets.token_hex(8), client_id, realm_id, email, scope, clock.time())
        self.grants[grant.id] = grant
        return grant

    def new_code(self, clock: Clock, grant: Grant, redirect_uri: str) -> str:
        code = "AB" + secrets.token_urlsafe(32)
        self.codes[code] = AuthCode(code, grant.client_id, redirect_uri, grant.id, clock.time() + CODE_TTL)
        return code

    def issue(self, clock: Clock, grant: Grant, access_ttl: int) -> dict[str, Any]:
        """Intuit's token response; the refresh token's life is rolling but capped at 5 years from the grant."""
        now = clock.time()
        access = AccessToken("eyJ" + secrets.token_urlsafe(48), grant.id, now + access_ttl)
        refresh_expiry = min(now + REFRESH_TTL, grant.created_at + GRANT_CAP)
        refresh = RefreshToken("RT1-" + secrets.token_urlsafe(36), grant.id, refresh_expiry)
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        return {
            "access_token": access.token,
            "refresh_token": refresh.token,
            "token_type": "bearer",
            "expires_in": access_ttl,
            "x_refresh_token_expires_in": int(refresh_expiry - now),
        }

    def exchange_code(self, clock: Clock, code: str, client_id: str, redirect_uri: str) -> Grant | None:
        found = self.codes.get(code)
        if found is None or found.used or found.expires_at <= clock.time():
            return None
        if found.client_id != client_id or found.redirect_uri != redirect_uri:
            return None
        found.used = True
        grant = self.grants.get(found.grant_id)
        return grant if grant and not grant.revoked else None

    def use_refresh(self, clock: Clock, token: str, client_id: str) -> Grant | None:
        found = self.refresh.get(token)
        if found is None or found.expires_at <= clock.time():
            return None
        grant = self.grants.get(found.grant_id)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return None
        # Rotation: the presented token dies 24 h from now (or sooner if it was already due).
        found.expires_at = min(found.expires_at, clock.time() + REFRESH_GRACE)
        return grant

    def check_access(self, clock: Clock, token: str) -> tuple[Grant | None, str]:
        found = self.access.get(token)
        if found is None:
            return None, "Token invalid"
        if found.expires_at <= clock.time():
            return None, "Token expired"
        grant = self.grants.get(found.grant_id)
        if grant is None or grant.revoked:
            return None, "Token revoked"
        return grant, ""

    def revoke(self, token: str, client_id: str) -> bool:
        """Revoking either token of a grant disconnects the app from the company."""
        found: AccessToken | RefreshToken | None = self.access.get(token) or self.refresh.get(token)
        if found is None:
            return False
        grant = self.grants.get(found.grant_id)
        if grant is None or grant.client_id != client_id:
            return False
        grant.revoked = True
        return True

    def purge(self, clock: Clock) -> None:
        now = clock.time()
        for table in (self.codes, self.access, self.refresh):
            for key in [k for k, v in table.items() if v.expires_at <= now - 86400]:
                del table[key]

    def to_json(self) -> dict[str, Any]:
        return {name: {k: asdict(v) for k, v in getattr(self, name).items()}
                for name in ("grants", "codes", "access", "refresh")}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenStore:
        return cls(
            grants={k: Grant(**v) for k, v in data.get("grants", {}).items()},
            codes={k: AuthCode(**v) for k, v in data.get("codes", {}).items()},
            access={k: AccessToken(**v) for k, v in data.get("access", {}).items()},
            refresh={k: RefreshToken(**v) for k, v in data.get("refresh", {}).items()},
        )
