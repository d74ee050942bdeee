"""Encryption at rest for victim contact details and evidence, with a key kept outside
the database (a 0600 file in $ANSIM_HOME, or wherever ANSIM_KEY_FILE points)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


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
        handle.write(Fernet.generate_key())
    return True


class Cipher:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    def _get(self) -> Fernet:
        if self._fernet is None:
            try:
                self._fernet = Fernet(self.key_file.read_bytes().strip())
            except FileNotFoundError as exc:
                raise KeyProblem(
                    f"encryption key not found at {self.key_file} (run `ansim init`)"
                ) from exc
            except ValueError as exc:
                raise KeyProblem(f"encryption key at {self.key_file} is malformed") from exc
        return self._fernet

    def fernet(self) -> Fernet:
        """The key itself, for streaming encryption (sealed evidence files)."""
        return self._get()

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._get().encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._get().decrypt(token)
        except InvalidToken as exc:
            raise KeyProblem("cannot decrypt: the key does not match this data") from exc
