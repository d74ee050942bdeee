"""Where ansim keeps its state: the home folder (`ANSIM_HOME`, default ~/.ansim) and its
database (`ANSIM_DB_URL`, default a SQLite file in the home)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ansim.settings import Settings


@dataclass(frozen=True)
class Home:
    root: Path
    db_url: str
    # The encryption key's file when it lives outside the home (`ANSIM_KEY_FILE`).
    key_path: Path | None = None

    @property
    def key_file(self) -> Path:
        return self.key_path or self.root / "secret.key"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def audit_head_file(self) -> Path:
        return self.root / "audit.head"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"


def resolve_home(settings: Settings) -> Home:
    root = settings.home.expanduser()
    db_url = settings.db_url or f"sqlite:///{root / 'ansim.db'}"
    return Home(root=root, db_url=db_url, key_path=settings.key_file)
