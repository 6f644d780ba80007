"""Encryption of device passwords at rest (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        # a separate key for signing object URLs, derived so one setting serves both
        import hashlib

        self.signing_key = hashlib.sha256(b"tianwang-object-url:" + key).digest()

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ValueError("device secret cannot be decrypted with the configured key") from None


def load_or_create_key(configured: str, data_dir: Path) -> bytes:
    """The configured key, or (embedded default only) a key file made once in data_dir."""
    if configured:
        key = configured.encode()
        Fernet(key)  # raises ValueError on a malformed key, at start rather than at first use
        return key
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
