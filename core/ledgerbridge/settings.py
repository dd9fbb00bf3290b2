"""Server settings: embedded defaults, overridden by LEDGERBRIDGE_* environment variables and the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

ENV_PREFIX = "LEDGERBRIDGE_"


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    #: The URL users and vendors reach this server at (OAuth redirects, webhook URLs); default from host/port.
    public_url: str | None = None
    #: SQLite database file; default `<data_dir>/ledgerbridge.db`.
    database: str | None = None
    #: `postgresql://user:password@host:port/dbname` to share one PostgreSQL database between replicas;
    #: unset, the server uses the SQLite file above.
    database_url: str | None = None
    #: Bearer token for the admin API and the web UI; default: generated into `<data_dir>/admin-token`.
    admin_token: str | None = None
    #: Fernet keys, comma-separated, newest first; default: generated into `<data_dir>/secret.key`.
    secret_keys: str | None = None
    plugins_dir: Path | None = None
    #: Deliveries run at once. A worker waiting on a vendor's rate limit costs nothing but a coroutine; with
    #: 8, the CRM's import left a twelfth of its limit unused, the workers being busy elsewhere when a slot came.
    workers: int = 16
    #: A worker renews its leases every third of this; a dead worker's deliveries are reclaimed after it.
    lease_seconds: float = 60.0
    max_attempts: int = 10
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 900.0
    poll_interval_seconds: float = 1.0
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    #: `json`: one JSON object per log line (ts, level, logger, msg, request_id, account, plugin, delivery_id)
    log_format: str = "text"
    #: serve `/metrics` without the admin token (only where the port is reachable from a private network only)
    metrics_public: bool = False

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def database_path(self) -> str:
        return self.database or str(self.data_dir / "ledgerbridge.db")

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then LEDGERBRIDGE_<FIELD> variables, then non-None `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(values, cls, strict=False, dec_hook=_decode_path)


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path:
        return Path(value)
    raise NotImplementedError(f"cannot read {kind} from settings")
