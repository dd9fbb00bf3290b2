"""Encryption at rest for connection secrets (OAuth tokens): Fernet, with key rotation via MultiFernet.

Keys come from LEDGERBRIDGE_SECRET_KEYS (comma-separated, newest first) or, when unset, from a key file in
the data directory created with 0600 permissions on first use.

Opening a token (an HMAC check and an AES decryption) is remembered for the last few hundred tokens: the same
sealed bytes always open to the same value, and every caller gets its own copy of it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "secret.key"
OPENED_CACHE_SIZE = 512


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._opened: OrderedDict[bytes, bytes] = OrderedDict()  # sealed token -> its plaintext

    @classmethod
    def from_environment_or_file(cls, data_dir: Path, env_value: str | None = None) -> SecretBox:
        if env_value:
            return cls([k.strip().encode() for k in env_value.split(",") if k.strip()])
        return cls([load_or_create_key_file(data_dir / KEY_FILE_NAME)])

    def seal(self, value: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(msgspec.json.encode(value))

    def open(self, token: bytes) -> dict[str, Any]:
        token = bytes(token)
        plain = self._opened.get(token)
        if plain is None:
            try:
                plain = self._fernet.decrypt(token)
            except InvalidToken as exc:
                raise ValueError("a stored secret could not be decrypted: was the secret key changed?") from exc
            self._opened[token] = plain
            if len(self._opened) > OPENED_CACHE_SIZE:
                self._opened.popitem(last=False)
        else:
            self._opened.move_to_end(token)
        return msgspec.json.decode(plain, type=dict[str, Any])


def load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
