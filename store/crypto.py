"""Encryption at rest for victim data (contacts, pseudonyms, notes, labels, evidence keys),
with a key kept outside the database: a 0600 file in $ANSIM_HOME or, better, wherever
ANSIM_KEY_FILE points (a separate disk, a mounted secret), so a copy of the home alone
decrypts nothing.

The key file holds one Fernet key per line, the newest first: `ansim key rotate` puts a
new key in front, re-encrypts every token with it (MultiFernet), then drops the old one,
so readers keep working during the rotation.

Fernet has no associated data, so a token carries its context inside the encrypted
plaintext (`AD_MARKER context NUL plaintext`) and decryption checks it: a token moved to
another case's row, or another column, fails instead of decrypting.

The store keeps a check value of the key (a keyed hash of a constant, never the key) and
refuses a key that does not match it instead of silently encrypting with a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

AD_MARKER = b"\x00ansim-ad1\x00"
KEY_CHECK_LABEL = b"ansim data key check v1"


class KeyProblem(Exception):
    """The key file is missing, unreadable or wrong for the data."""


def create_key_file(path: Path) -> bool:
    """Write a new key unless one exists; returns True if it created one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")
    return True


def create_secret_file(path: Path) -> bool:
    """A random 256-bit secret (the audit chain's HMAC key) in a new 0600 file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically with a 0600 file holding `data`."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def key_check_value(key: bytes) -> str:
    """Identifies a key without revealing it (an HMAC of a constant under the key)."""
    return hmac.new(key, KEY_CHECK_LABEL, hashlib.sha256).hexdigest()[:32]


def bind(context: str, plaintext: bytes) -> bytes:
    return AD_MARKER + context.encode() + b"\x00" + plaintext


def unbind(context: str | None, bound: bytes) -> bytes:
    """The plaintext, after checking the context it was encrypted for. Tokens written
    before associated data existed have no marker and pass (rotation binds them)."""
    if not bound.startswith(AD_MARKER):
        return bound
    found, separator, plaintext = bound[len(AD_MARKER) :].partition(b"\x00")
    if not separator:
        raise KeyProblem("cannot decrypt: malformed associated data")
    if context is not None and found.decode(errors="replace") != context:
        raise KeyProblem(
            f"ciphertext belongs to {found.decode(errors='replace')!r}, not {context!r}"
            " (moved between records?)"
        )
    return plaintext


class Cipher:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._keys: list[bytes] | None = None
        self._fernet: MultiFernet | None = None

    def keys(self) -> list[bytes]:
        """The key file's keys, newest (the one that encrypts) first."""
        if self._keys is None:
            try:
                lines = self.key_file.read_bytes().split()
            except FileNotFoundError as exc:
                raise KeyProblem(
                    f"encryption key not found at {self.key_file} (run `ansim init`, or set "
                    "ANSIM_KEY_FILE to where the key is kept)"
                ) from exc
            try:
                fernets = [Fernet(line) for line in lines]
            except ValueError as exc:
                raise KeyProblem(f"encryption key at {self.key_file} is malformed") from exc
            if not fernets:
                raise KeyProblem(f"encryption key at {self.key_file} is empty")
            self._keys = lines
            self._fernet = MultiFernet(fernets)
        return self._keys

    def _get(self) -> MultiFernet:
        self.keys()
        assert self._fernet is not None
        return self._fernet

    def reload(self) -> None:
        self._keys = self._fernet = None

    def fernet(self) -> MultiFernet:
        """The key itself, for streaming encryption (evidence sealed before per-bundle keys)."""
        return self._get()

    def check_values(self) -> list[str]:
        return [key_check_value(key) for key in self.keys()]

    def encrypt(self, plaintext: bytes, context: str | None = None) -> bytes:
        return self._get().encrypt(bind(context, plaintext) if context else plaintext)

    def decrypt(self, token: bytes, context: str | None = None) -> bytes:
        try:
            bound = self._get().decrypt(token)
        except InvalidToken as exc:
            raise KeyProblem("cannot decrypt: the key does not match this data") from exc
        return unbind(context, bound)

    def encrypt_text(self, text: str | None, context: str) -> bytes | None:
        return None if text is None else self.encrypt(text.encode(), context)

    def decrypt_text(self, token: bytes | None, context: str) -> str | None:
        return None if token is None else self.decrypt(token, context).decode()

    def rotate(self, token: bytes, context: str | None = None) -> bytes:
        """Re-encrypt with the newest key, binding a legacy token to `context` on the way."""
        bound = self._get().decrypt(token)
        if context is not None and not bound.startswith(AD_MARKER):
            bound = bind(context, bound)
        else:
            unbind(context, bound)
        return self._get().encrypt(bound)


def case_context(case_id: str, field: str) -> str:
    """Associated data of a case's encrypted field (contact, pseudonym, service-note, label)."""
    return f"case:{case_id}:{field}"


def takedown_context(takedown_id: int, field: str) -> str:
    return f"takedown:{takedown_id}:{field}"
