"""One opened ansim home: the store, the cipher, the signal banks and the settings it was
opened with, which say who is acting.

Every command opens one Workspace (`ansim.pipeline.workspaces.open_workspace`) and passes
it to the services. The banks are handed in by the pipeline, which owns them: casework
only asks them to drop entries (`SignalBanks`), so it never imports the pipeline. They are
opened on first use (`BankOpener`): building them loads every signal type, its detector and
its index (numpy, FAISS, OpenCV...), which a command that only lists cases must not pay for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ansim.settings import Settings
from ansim.store.audit import record, unkeyed_until, write_anchor
from ansim.store.crypto import Cipher
from ansim.store.db import Store
from ansim.store.home import Home
from ansim.store.tables import AuditHead
from sqlalchemy import select, text
from sqlalchemy.orm import Session


class NotInitialized(Exception):
    pass


class SignalBanks(Protocol):
    """What casework needs of a set of signal banks: dropping entries (purge, withdrawal)."""

    def remove(self, signal_ids_by_kind: dict[str, list[int]], erase: bool = False) -> int: ...


class BankOpener(Protocol):
    """The banks of one owner ("reference": the reference bank, "item": the crawl history),
    opened on the first call and the same object on every later one."""

    def __call__(self, owner: str) -> Any: ...


@dataclass
class Workspace:
    home: Home
    store: Store
    cipher: Cipher
    # Shared by copies (`dataclasses.replace` for another actor), so they share the banks.
    open_banks: BankOpener
    # What it was opened with (the environment's ANSIM_* variables, read once).
    settings: Settings
    # Who is acting (audit entries, queue events): by default the settings' analyst.
    actor: str = ""
    audit_key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        self.actor = self.actor or self.settings.analyst

    @property
    def banks(self) -> Any:
        """The reference bank (an `ansim.pipeline.banks.Banks`), opened on first use."""
        return self.open_banks("reference")

    @property
    def history(self) -> SignalBanks:
        """The crawl history's banks, opened on first use."""
        return self.open_banks("item")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; after it commits, the audit chain head is anchored outside the DB."""
        with self.store.session() as session:
            yield session
        self.anchor_audit_head()

    @contextmanager
    def listing(self) -> Iterator[SessionListing]:
        """One transaction as a `casework.listings.ListingStore`."""
        with self.session() as session:
            yield SessionListing(session, self.cipher, self.actor)

    def anchor_audit_head(self) -> None:
        """Write the committed audit chain head outside the DB (after every commit)."""
        with self.store.read_session() as session:
            head = session.execute(select(AuditHead.seq, AuditHead.entry_hash)).first()
            legacy_end = unkeyed_until(session)
        if head is not None and head.seq:
            write_anchor(
                self.home.audit_head_file, head.seq, head.entry_hash, self.audit_key, legacy_end
            )

    def close(self) -> None:
        self.store.dispose()


@dataclass
class SessionListing:
    """A Session as a `casework.listings.ListingStore` (any database)."""

    session: Session
    cipher: Cipher
    actor: str

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self.session.execute(text(sql), params or {}))

    def record_audit(self, action: str, subject: str, detail: dict[str, Any]) -> None:
        record(self.session, self.actor, action, subject, detail)
