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
