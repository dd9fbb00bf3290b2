"""The sandbox's own webhook key pairs and signatures (x-wh-signature RSA, x-ghl-signature Ed25519)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

RSA_FILE = "webhook-rsa-private.pem"
ED25519_FILE = "webhook-ed25519-private.pem"


@dataclass
class WebhookKeys:
    rsa_private: rsa.RSAPrivateKey
    ed25519_private: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls, rsa_bits: int = 2048) -> WebhookKeys:
        return cls(
            rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits),
            ed25519.Ed25519PrivateKey.generate(),
        )

    @classmethod
    def load_or_create(cls, directory: str | None, rsa_bits: int = 2048) -> WebhookKeys:
        """Persisted keys survive restarts, so a receiver configured once keeps verifying."""
        if directory is None:
            return cls.generate(rsa_bits)
        rsa_path, ed_path = os.path.join(directory, RSA_FILE), os.path.join(directory, ED25519_FILE)
        if os.path.exists(rsa_path) and os.path.exists(ed_path):
            with open(rsa_path, "rb") as r, open(ed_path, "rb") as e:
                rsa_key = serialization.load_pem_private_key(r.read(), password=None)
                ed_key = serialization.load_pem_private_key(e.read(), password=None)
            if not isinstance(rsa_key, rsa.RSAPrivateKey) or not isinstance(ed_key, ed25519.Ed25519PrivateKey):
                raise ValueError(f"unexpected key types in {directory}")
            return cls(rsa_key, ed_key)
        keys = cls.generate(rsa_bits)
        os.makedirs(directory, exist_ok=True)
        for path, key in ((rsa_path, keys.rsa_private), (ed_path, keys.ed25519_private)):
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        return keys

    def sign_rsa(self, body: bytes) -> str:
        """x-wh-signature: base64 RSA PKCS#1 v1.5 over SHA-256 of the raw body."""
        return base64.b64encode(self.rsa_private.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def sign_ed25519(self, body: bytes) -> str:
        """x-ghl-signature: base64 Ed25519 signature of the raw body."""
        return base64.b64encode(self.ed25519_private.sign(body)).decode()

    def rsa_public_pem(self) -> str:
        return (
            self.rsa_private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def ed25519_public_pem(self) -> str:
        return (
            self.ed25519_private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def ed25519_public_raw_b64(self) -> str:
        raw = self.ed25519_private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def public(self) -> dict[str, str]:
        return {
            "x-wh-signature": self.rsa_public_pem(),
            "x-ghl-signature": self.ed25519_public_pem(),
            "x-ghl-signature-raw-base64": self.ed25519_public_raw_b64(),
        }
