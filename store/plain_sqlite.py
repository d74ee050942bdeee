"""The home's SQLite database through the standard library's sqlite3, without SQLAlchemy.

The engine (`db.py`) gives every connection the settings here (`configure`). Commands that
only list (`case list`, `queue list`, `ref list`, `host list`, `audit verify`) open the home
through `open_plain`: importing SQLAlchemy and mapping the tables alone takes longer than
such a command may take to start (`ansim bench startup`). They run the same listing code
either way (`casework.listings`), over this or over a Session.

`open_plain` takes only a home that needs nothing done: a SQLite store at the newest
schema, its key check value stored and matching the key, its audit key in place. For
anything else (PostgreSQL, a store to migrate or to key, a wrong or missing key) it returns
None, and the command opens the home the full way (`pipeline.workspaces.open_workspace`),
which does the work or refuses with the same words as ever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ansim.store import audit
from ansim.store.crypto import Cipher, KeyProblem
from ansim.store.home import Home
from ansim.store.schema_version import VERSION_TABLE, head_revision

SQLITE_BUSY_TIMEOUT_S = 60
SQLITE_URL_PREFIX = "sqlite:///"
# The store_setting row holding the data key's check value (`pipeline.workspaces`).
KEY_CHECK = "data_key_check"
# How SQLAlchemy's SQLite DateTime writes a timestamp (UTC, no zone); read back by
# `datetime.fromisoformat`.
STORED_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def configure(connection: sqlite3.Connection) -> None:
    """Settings of every connection to a home's SQLite file."""
    # Transactions begin when the caller says (BEGIN or BEGIN IMMEDIATE), not when
    # pysqlite guesses.
    connection.isolation_level = None
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten content is zeroed on its page, not left in free space:
    # a purged victim's rows must not be recoverable from the database file.
    connection.execute("PRAGMA secure_delete=ON")
    connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")


def database_path(db_url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL; None for any other URL."""
    if not db_url.startswith(SQLITE_URL_PREFIX) or "?" in db_url:
        return None
    path = db_url[len(SQLITE_URL_PREFIX) :]
    return Path(path) if path and path != ":memory:" else None


def stored_time(value: datetime | str) -> datetime:
    """A timestamp column's value as a datetime (sqlite3 returns the stored text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass
class PlainHome:
    """An opened SQLite home: `rows` and `record_audit` inside `transaction()`, as a
    `casework.listings.ListingStore`."""

    connection: sqlite3.Connection
    cipher: Cipher
    actor: str
    audit_key: bytes
    head_file: Path

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        return self.connection.execute(sql, params or {}).fetchall()

    def record_audit(self, action: str, subject: str, detail: dict[str, Any]) -> None:
        """`audit.record` for an entry without free text, in this transaction."""
        head = self.rows("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        if not head:
            self.rows(
                "INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, :genesis)",
                {"genesis": audit.GENESIS_HASH},
            )
        seq, head_hash = head[0] if head else (0, audit.GENESIS_HASH)
        entry = audit.next_entry(
            seq, head_hash, self.actor, action, subject, detail, self.audit_key
        )
        self.rows(
            "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, entry_hash) "
            "VALUES (:seq, :at, :actor, :action, :subject, :detail, :prev_hash, :entry_hash)",
            {**asdict(entry), "at": entry.at.strftime(STORED_TIME_FORMAT)},
        )
        self.rows(
            "UPDATE audit_head SET seq = :seq, entry_hash = :entry_hash WHERE id = 1",
            {"seq": entry.seq, "entry_hash": entry.entry_hash},
        )

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[PlainHome]:
        """One transaction (a writer takes the lock up front, as `Store.session` does);
        after it commits, the audit chain head is anchored outside the database, as
        `Workspace.session` does."""
        self.connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield self
        except BaseException:
            if self.connection.in_transaction:  # a failed statement may have ended it
                self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        if write:
            self.anchor_audit_head()

    def anchor_audit_head(self) -> None:
        head = self.rows("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        if head and head[0][0]:
            audit.write_anchor(self.head_file, *head[0], self.audit_key, self.unkeyed_until())

    def unkeyed_until(self) -> int:
        setting = self.rows(
            "SELECT value FROM store_setting WHERE name = :name", {"name": audit.UNKEYED_UNTIL}
        )
        return int(setting[0][0]) if setting else 0

    def verify_audit(self, shipped: Path | None = None) -> tuple[int, list[audit.AuditProblem]]:
        """`audit.verify` of the whole chain against the home's anchor (and `shipped`)."""
        entries = (
            audit.ChainedEntry(seq, stored_time(at), *fields)
            for seq, at, *fields in self.connection.execute(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, entry_hash "
                "FROM audit ORDER BY seq"
            )
        )
        head = self.rows("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        return audit.verify_entries(
            entries,
            tuple(head[0]) if head else None,
            self.unkeyed_until(),
            self.audit_key,
            self.head_file,
            shipped,
        )

    def close(self) -> None:
        self.connection.close()


def open_plain(home: Home, actor: str) -> PlainHome | None:
    """The home opened through sqlite3, or None when it needs the full opening (above)."""
    path = database_path(home.db_url)
    if path is None or not path.is_file():
        return None
    # mode=rw: never create a database file that is not there.
    connection = sqlite3.connect(
        f"file:{quote(str(path))}?mode=rw", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S
    )
    try:
        configure(connection)
        opened = _ready(connection, home, actor)
    except (sqlite3.Error, KeyProblem, OSError, ValueError):
        opened = None
    if opened is None:
        connection.close()
    return opened


def _ready(connection: sqlite3.Connection, home: Home, actor: str) -> PlainHome | None:
    """The opened home when its schema, data key and audit key need nothing done."""
    (tables,) = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()
    if not tables:
        return None
    stamped = [row[0] for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")]
    if stamped != [head_revision()]:
        return None
    cipher = Cipher(home.key_file)
    check = connection.execute(
        "SELECT value FROM store_setting WHERE name = ?", (KEY_CHECK,)
    ).fetchone()
    if check is None or check[0] not in cipher.check_values():
        return None
    if not home.audit_key_file.is_file():
        return None
    audit_key = bytes.fromhex(home.audit_key_file.read_text().strip())
    if len(audit_key) < 32:
        return None
    return PlainHome(connection, cipher, actor, audit_key, home.audit_head_file)
