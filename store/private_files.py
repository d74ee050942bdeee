"""Files that may hold victim data (decrypted evidence, notices, fetched media): 0600 files
in 0700 folders, and scratch folders that a killed process cannot leave behind for good."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; the folder itself ends up 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def open_private(path: Path) -> BinaryIO:
    """Open `path` for writing as a new 0600 file (replacing any file of that name)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def write_private(path: Path, data: bytes) -> Path:
    with open_private(path) as handle:
        handle.write(data)
    return path


def clear_work_dir(path: Path) -> int:
    """Empty a scratch folder (a killed run's fetched bodies) and leave it 0700; returns
    how many entries were removed."""
    private_dir(path)
    removed = 0
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
