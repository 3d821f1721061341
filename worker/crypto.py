"""Encryption of stored credentials: JSON in, a Fernet token out, keys from ENCRYPTION_KEYS.

ENCRYPTION_KEYS holds one or more comma-separated Fernet keys. The first key encrypts; every key
decrypts, so a key is rotated by putting the new key first, re-encrypting (`rotate`), then removing
the old one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from worker.config import get_settings
from worker.errors import PermanentError

GENERATE_HINT = "generate one with: python -c 'from worker.crypto import generate_key; print(generate_key())'"


class EncryptionKeyError(PermanentError):
    """ENCRYPTION_KEYS is unset or holds something that is not a Fernet key: fix the configuration."""


class DecryptionError(PermanentError):
    """A stored token was not made by any key in ENCRYPTION_KEYS (key removed too early, or bad data)."""


def generate_key() -> str:
    """A new random Fernet key (url-safe base64, 32 bytes) to put in ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode("ascii")


def _fernet(keys: str | Sequence[str] | None) -> MultiFernet:
    raw = get_settings().encryption_keys if keys is None else keys
    parts = [k.strip() for k in raw.split(",")] if isinstance(raw, str) else [k.strip() for k in raw]
    parts = [k for k in parts if k]
    if not parts:
        raise EncryptionKeyError(
            f"ENCRYPTION_KEYS is not set: set it to one or more comma-separated Fernet keys; {GENERATE_HINT}"
        )
    fernets = []
    for position, key in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise EncryptionKeyError(
                f"ENCRYPTION_KEYS key #{position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"{GENERATE_HINT}"
            ) from None
    return MultiFernet(fernets)


def encrypt_json(data: dict[str, Any], *, keys: str | Sequence[str] | None = None) -> bytes:
    """Encrypt `data` (JSON-serialisable) with the first key; `keys` overrides ENCRYPTION_KEYS."""
    plain = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _fernet(keys).encrypt(plain)


def decrypt_json(token: bytes | str, *, keys: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Decrypt a token made by `encrypt_json` with any of the keys."""
    raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
    try:
        plain = _fernet(keys).decrypt(raw)
    except InvalidToken:
        raise DecryptionError(
            "stored credentials cannot be decrypted with any key in ENCRYPTION_KEYS "
            "(was the key that encrypted them removed?)"
        ) from None
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise DecryptionError("stored credentials are not a JSON object")
    return value


def rotate(token: bytes | str, *, keys: str | Sequence[str] | None = None) -> bytes:
    """Re-encrypt a token with the first key (after a new key was put first in ENCRYPTION_KEYS)."""
    raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
    try:
        return _fernet(keys).rotate(raw)
    except InvalidToken:
        raise DecryptionError("token cannot be decrypted with any key in ENCRYPTION_KEYS") from None
