"""worker.crypto: JSON round trip, key rotation, and clear errors when ENCRYPTION_KEYS is wrong."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet, InvalidToken

from worker import crypto
from worker.config import reset_settings
from worker.errors import PermanentError

CREDS = {"token": "ya29.a", "refresh_token": "1//r", "expiry": "2026-11-25T10:00:00+00:00", "scopes": ["s1", "s2"]}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Two fresh keys; ENCRYPTION_KEYS starts as the first one only."""
    pair = [crypto.generate_key(), crypto.generate_key()]
    monkeypatch.setenv("ENCRYPTION_KEYS", pair[0])
    reset_settings()
    yield pair
    reset_settings()


def test_round_trip_through_settings(keys: list[str]) -> None:
    token = crypto.encrypt_json(CREDS)
    assert isinstance(token, bytes)
    assert b"ya29" not in token
    assert crypto.decrypt_json(token) == CREDS
    assert crypto.decrypt_json(token.decode()) == CREDS


def test_generated_key_is_a_fernet_key() -> None:
    key = crypto.generate_key()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"
    assert key != crypto.generate_key()


def test_rotation_old_key_still_decrypts_new_key_encrypts(keys: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    old_key, new_key = keys
    old_token = crypto.encrypt_json(CREDS)

    monkeypatch.setenv("ENCRYPTION_KEYS", f"{new_key}, {old_key}")
    reset_settings()
    assert crypto.decrypt_json(old_token) == CREDS  # the old key still decrypts
    new_token = crypto.encrypt_json(CREDS)
    assert Fernet(new_key).decrypt(new_token)  # the first key encrypts...
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(new_token)  # ...not the old one
    rotated = crypto.rotate(old_token)
    assert crypto.decrypt_json(rotated, keys=new_key) == CREDS

    monkeypatch.setenv("ENCRYPTION_KEYS", new_key)  # old key retired
    reset_settings()
    assert crypto.decrypt_json(new_token) == CREDS
    assert crypto.decrypt_json(rotated) == CREDS
    with pytest.raises(crypto.DecryptionError, match="cannot be decrypted"):
        crypto.decrypt_json(old_token)


@pytest.mark.parametrize("value", ["", "  ", " , "])
def test_missing_keys_say_how_to_fix(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", value)
    reset_settings()
    try:
        with pytest.raises(crypto.EncryptionKeyError, match="ENCRYPTION_KEYS is not set") as info:
            crypto.encrypt_json(CREDS)
        assert "generate_key" in str(info.value)
        assert isinstance(info.value, PermanentError)  # configuration: the engine does not retry it
    finally:
        reset_settings()


def test_invalid_key_names_its_position(keys: list[str]) -> None:
    with pytest.raises(crypto.EncryptionKeyError, match="key #2 is not a Fernet key"):
        crypto.encrypt_json(CREDS, keys=f"{keys[0]},not-a-key")


def test_tampered_token_is_refused(keys: list[str]) -> None:
    token = bytearray(crypto.encrypt_json(CREDS))
    token[20] ^= 1
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_json(bytes(token))
