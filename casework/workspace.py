"""One opened ansim home: the store, the cipher and the signal banks, plus who is acting.

Every command builds one Workspace and passes it to the services.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from casework.audit import write_anchor
from casework.banks import Banks
from casework.crypto import Cipher, create_key_file
from casework.db import Store
from casework.home import Home, resolve_home
from casework.models import AuditHead


class NotInitialized(Exception):
    pass


def current_actor() -> str:
    return os.environ.get("ANSIM_ANALYST") or getpass.getuser()


@dataclass
class Workspace:
    home: Home
    store: Store
    cipher: Cipher
    banks: Banks
    actor: str = field(default_factory=current_actor)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; after it commits, the audit chain head is anchored outside the DB."""
        with self.store.session() as session:
            yield session
        self.anchor_audit_head()

    def anchor_audit_head(self) -> None:
        """Write the committed audit chain head outside the DB (after every commit)."""
        with self.store.engine.connect() as connection:
            head = connection.execute(select(AuditHead.seq, AuditHead.entry_hash)).first()
        if head is not None:
            write_anchor(self.home.audit_head_file, head.seq, head.entry_hash)

    def close(self) -> None:
        self.store.dispose()


def init_workspace(home: Home | None = None) -> tuple[Workspace, bool]:
    """Create the home, key and schema if missing; returns (workspace, key_was_created)."""
    home = home or resolve_home()
    home.root.mkdir(parents=True, exist_ok=True)
    os.chmod(home.root, 0o700)
    created_key = create_key_file(home.key_file)
    store = Store(home.db_url)
    store.migrate()
    return _workspace(home, store), created_key


def open_workspace(home: Home | None = None) -> Workspace:
    home = home or resolve_home()
    if not home.root.exists() and home.db_url.startswith("sqlite"):
        raise NotInitialized(f"no ansim home at {home.root}: run `ansim init` first")
    store = Store(home.db_url)
    store.migrate()
    return _workspace(home, store)


def _workspace(home: Home, store: Store) -> Workspace:
    return Workspace(
        home=home, store=store, cipher=Cipher(home.key_file), banks=Banks(home.index_dir)
    )
