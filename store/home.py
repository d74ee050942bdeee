"""Where ansim keeps its state: `$ANSIM_HOME` (default ~/.ansim) or `ANSIM_DB_URL`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path
    db_url: str

    @property
    def key_file(self) -> Path:
        return Path(os.environ.get("ANSIM_KEY_FILE") or self.root / "secret.key")

    @property
    def key_file_inside_home(self) -> bool:
        """A key beside the data it protects: a copy of the home then decrypts everything."""
        try:
            self.key_file.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True

    @property
    def audit_key_file(self) -> Path:
        """The audit chain's HMAC key: not the data key (ANSIM_AUDIT_KEY_FILE moves it)."""
        return Path(os.environ.get("ANSIM_AUDIT_KEY_FILE") or self.root / "audit.key")

    @property
    def evidence_dir(self) -> Path:
        return self.root / "evidence"

    @property
    def notices_dir(self) -> Path:
        return self.root / "notices"

    @property
    def work_dir(self) -> Path:
        """Scratch files of a running crawl (fetched bodies); emptied when a crawl starts."""
        return self.root / "work"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def audit_head_file(self) -> Path:
        return self.root / "audit.head"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"


def resolve_home() -> Home:
    root = Path(os.environ.get("ANSIM_HOME") or Path.home() / ".ansim").expanduser()
    db_url = os.environ.get("ANSIM_DB_URL") or f"sqlite:///{root / 'ansim.db'}"
    return Home(root=root, db_url=db_url)
