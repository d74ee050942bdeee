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
    # The audit chain's HMAC key file when it lives elsewhere (`ANSIM_AUDIT_KEY_FILE`).
    audit_key_path: Path | None = None

    @property
    def key_file(self) -> Path:
        return self.key_path or self.root / "secret.key"

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
        """The audit chain's HMAC key: not the data key."""
        return self.audit_key_path or self.root / "audit.key"

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


def resolve_home(settings: Settings) -> Home:
    root = settings.home.expanduser()
    db_url = settings.db_url or f"sqlite:///{root / 'ansim.db'}"
    return Home(
        root=root,
        db_url=db_url,
        key_path=settings.key_file,
        audit_key_path=settings.audit_key_file,
    )
