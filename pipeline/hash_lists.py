"""Hash lists at a national center's volume: streamed in and out, millions of lines a minute.

`ref import` reads the list line by line and writes rows straight through the database
driver (SQLite: a batch's signals in one `INSERT ... SELECT` from `json_each`; PostgreSQL:
`COPY`), never building an ORM object
per line. Each valid line becomes one reference with one signal, as before, so withdrawing
or purging one hash stays exact. Reference and signal ids are handed out as one
contiguous block under the write lock: line k of the valid lines is reference
`first_reference_id + k`.

An import is one transaction: interrupted (Ctrl-C, a crash, a full disk), it leaves
nothing behind, and running it again imports the whole list. The PDQ bank is told once,
after the commit, with the raw hashes in one array (one delta segment, or a new base when
the list is large beside the bank); if the process dies between the commit and that, the
bank's checkpoint is behind the store and the next use reads the newer rows from it.

On SQLite a large list drops the two tables' secondary indexes inside the transaction and
rebuilds them once at the end (a sort, instead of millions of random B-tree inserts);
readers keep the old snapshot, indexes and all, until the commit.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from ansim.casework.cases import get_case, require_open_case
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.detector.pdq import PDQ_BYTES
from ansim.store import audit
from ansim.store.crypto import case_context
from ansim.store.tables import Reference, Signal, utcnow
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

HASH_FORMATS = {"pdq": 64, "md5": 32}
LABEL_MAX = Reference.__table__.c.label.type.length  # type: ignore[attr-defined]
# Rows written per executemany / COPY round.
BATCH_LINES = 20_000
# From this size on (~150k lines) SQLite's secondary indexes are rebuilt once at the end.
BULK_INDEX_BYTES = 10 << 20
# Connection settings while a bulk import writes (restored after): the page cache in KiB.
BULK_PRAGMAS = {"cache_size": -256 * 1024, "threads": 2}
# Rejected lines listed in the report; past this only their count grows.
REJECTIONS_LISTED = 1000


@dataclass
class RejectedLine:
    line: int
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error}


@dataclass
class ImportReport:
    hash_format: str
    imported: int = 0
    rejected: int = 0
    rejections: list[RejectedLine] = field(default_factory=list)
    first_reference_id: int | None = None

    @property
    def last_reference_id(self) -> int | None:
        if self.first_reference_id is None:
            return None
        return self.first_reference_id + self.imported - 1

    def reference_id_of(self, valid_line_number: int) -> int:
        """The reference made from the k-th valid line (0-based)."""
        if self.first_reference_id is None or not 0 <= valid_line_number < self.imported:
            raise IndexError(valid_line_number)
        return self.first_reference_id + valid_line_number

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.hash_format,
            "imported": self.imported,
            "rejected": self.rejected,
            "reference_ids": (
                [self.first_reference_id, self.last_reference_id] if self.imported else []
            ),
            "rejections": [r.as_dict() for r in self.rejections],
        }


def parse_hash_line(text_line: str, hash_format: str) -> tuple[str, str | None, bytes]:
    """`hash[,label]` -> (lowercase hash, label, the hash's bytes); raises ValueError with
    the reason."""
    value, _, label = text_line.partition(",")
    value = value.strip().lower()
    if hash_format == "pdq" and len(value) == 66 and value.startswith("0x"):
        value = value[2:]
    width = HASH_FORMATS[hash_format]
    try:
        # fromhex skips spaces between digit pairs: the length checks rule those out.
        raw = bytes.fromhex(value) if len(value) == width else b""
    except ValueError:
        raw = b""
    if len(raw) * 2 != width:
        raise ValueError(f"not a {hash_format} hash ({width} hex digits expected): {value[:80]!r}")
    label = label.strip()
    if len(label) > LABEL_MAX:
        raise ValueError(f"label longer than {LABEL_MAX} characters")
    return value, (label or None), raw


class _ListReader:
    """The list's lines, streamed (a BOM at the start dropped), and how far it has read."""

    def __init__(self, list_file: Path) -> None:
        self.path = list_file
        try:
            self._raw = open(list_file, "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise CaseworkError(
                f"cannot read hash list {list_file}: {exc.strerror or exc}"
            ) from exc
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline=None)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        number = 0
        try:
            for number, line in enumerate(self._text, start=1):  # noqa: B007 (in except)
                yield number, line
        except UnicodeDecodeError as exc:
            raise CaseworkError(
                f"hash list {self.path} is not UTF-8 text (after line {number}): {exc.reason}"
            ) from exc

    @property
    def bytes_read(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._text.close()


class _RowWriter:
    """Writes reference + signal rows through the session's own driver connection."""

    def __init__(self, session: Session, bulk: bool) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.driver = self.connection.connection.driver_connection
        self._dropped_indexes: list[str] = []
        self._dropped_triggers: list[str] = []
        self._pragmas_before: dict[str, Any] = {}
        if self.dialect == "sqlite" and bulk:
            self._drop_secondary_indexes()
            self._drop_signal_triggers()
            self._set_bulk_pragmas()
        elif self.dialect == "postgresql":
            # Others may read meanwhile; writers of references wait, so the id block is ours.
            self.session.execute(text("LOCK TABLE reference, signal IN EXCLUSIVE MODE"))
        self.next_reference_id = self._max_id(Reference) + 1
        self.next_signal_id = self._max_id(Signal) + 1
        added_at = Reference.__table__.c.added_at.type  # type: ignore[attr-defined]
        # The stored form the ORM would write (SQLite: a string), computed once.
        dialect = self.connection.dialect
        processor = added_at.dialect_impl(dialect).bind_processor(dialect)
        self.added_at = processor(utcnow()) if processor else utcnow()

    def _max_id(self, table: type[Reference] | type[Signal]) -> int:
        return int(self.session.execute(select(func.coalesce(func.max(table.id), 0))).scalar_one())

    def _set_bulk_pragmas(self) -> None:
        """A page cache large enough for the index rebuild's sort and B-tree (SQLite's
        default 2 MB spills a 10M-row sort to temporary files), and the sort's helper
        threads. Both are the connection's, so `restore` puts them back."""
        cursor = self.driver.cursor()
        for pragma, value in BULK_PRAGMAS.items():
            self._pragmas_before[pragma] = cursor.execute(f"PRAGMA {pragma}").fetchone()[0]
            cursor.execute(f"PRAGMA {pragma}={value}")

    def restore(self) -> None:
        cursor = self.driver.cursor()
        for pragma, value in self._pragmas_before.items():
            cursor.execute(f"PRAGMA {pragma}={value}")
        self._pragmas_before.clear()

    def _drop_secondary_indexes(self) -> None:
        cursor = self.driver.cursor()
        found = cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name IN ('reference', 'signal') AND sql IS NOT NULL"
        ).fetchall()
        for name, sql in found:
            cursor.execute(f'DROP INDEX "{name}"')
            self._dropped_indexes.append(sql)

    def _drop_signal_triggers(self) -> None:
        """SQLite's row triggers keeping `bank_counter` cost ~3.5 us a row (35 s at 10M):
        a bulk import drops them in its transaction (SQLite's DDL is transactional, and
        no other writer can run meanwhile), counts its rows itself (`write`), and creates
        them again from their stored text in `finish`."""
        cursor = self.driver.cursor()
        found = cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'signal'"
        ).fetchall()
        for name, sql in found:
            cursor.execute(f'DROP TRIGGER "{name}"')
            self._dropped_triggers.append(sql)

    def _count_in_bank(self, kind: str, count: int, last_id: int) -> None:
        """What the dropped triggers would have done for `count` consented rows of `kind`."""
        self.driver.cursor().execute(
            "INSERT INTO bank_counter (kind, owner, entries, last_id) "
            "VALUES (?, 'reference', ?, ?) ON CONFLICT (kind, owner) DO UPDATE "
            "SET entries = entries + excluded.entries, "
            "last_id = max(last_id, excluded.last_id)",
            (kind, count, last_id),
        )

    def write(
        self,
        values: list[str],
        labels: list[bytes | None] | None,
        case_id: str,
        kind: str,
        actor: str,
    ) -> None:
        """One reference + one signal per hash; `labels` None: no hash has a label."""
        modality = "image" if kind == "pdq" else "file"
        count = len(values)
        first_ref, first_signal = self.next_reference_id, self.next_signal_id
        reference_ids = range(first_ref, first_ref + count)
        shared = (case_id, modality, "import", actor, self.added_at, "given")
        if self.dialect == "postgresql":
            self._copy(
                [
                    (ref_id, case_id, modality, label, "import", actor, self.added_at, "given")
                    for ref_id, label in zip(reference_ids, labels or repeat(None), strict=False)
                ],
                zip(range(first_signal, first_signal + count), reference_ids, repeat(kind), values),
            )
        else:
            cursor = self.driver.cursor()
            if labels is None:
                # Unlabelled rows differ only in their ids: SQLite counts them out itself
                # (half the cost of binding a row's eight values a line).
                cursor.execute(
                    "WITH RECURSIVE ids(id) AS (SELECT ? UNION ALL SELECT id + 1 FROM ids "
                    "WHERE id < ?) INSERT INTO reference (id, case_id, modality, "
                    "label_encrypted, origin, added_by, added_at, consent) "
                    "SELECT id, ?, ?, NULL, ?, ?, ?, ? FROM ids",
                    (first_ref, first_ref + count - 1, *shared),
                )
            else:
                cursor.executemany(
                    "INSERT INTO reference (id, case_id, modality, label_encrypted, origin, "
                    "added_by, added_at, consent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (ref_id, case_id, modality, label, "import", actor, self.added_at, "given")
                        for ref_id, label in zip(reference_ids, labels, strict=True)
                    ],
                )
            # The batch's hashes as one JSON array, unpacked by SQLite's json_each: a
            # third of executemany's CPU, which binds four values a row from Python.
            cursor.execute(
                "INSERT INTO signal (id, reference_id, kind, value) "
                "SELECT ? + key, ? + key, ?, value FROM json_each(?)",
                (first_signal, first_ref, kind, json.dumps(values)),
            )
            if self._dropped_triggers and count:
                self._count_in_bank(kind, count, first_signal + count - 1)
        self.next_reference_id += count
        self.next_signal_id += count

    def _copy(self, references: list[tuple], signals: Iterable[tuple]) -> None:
        with self.driver.cursor() as cursor:
            with cursor.copy(
                "COPY reference (id, case_id, modality, label_encrypted, origin, added_by, "
                "added_at, consent) FROM STDIN"
            ) as copy:
                for row in references:
                    copy.write_row(row)
            with cursor.copy("COPY signal (id, reference_id, kind, value) FROM STDIN") as copy:
                for row in signals:
                    copy.write_row(row)

    def finish(self) -> None:
        cursor = self.driver.cursor()
        for sql in self._dropped_indexes + self._dropped_triggers:
            cursor.execute(sql)
        if self.dialect == "postgresql":
            # Ids were handed out past the sequences: move them on.
            for table in ("reference", "signal"):
                self.session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    )
                )


def import_hash_list(
    workspace: Workspace,
    case_id: str,
    list_file: Path,
    hash_format: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a `hash[,label]` list into one reference per valid line (one transaction).

    Malformed lines are reported by number and skipped. `on_progress(bytes_read, total)`
    is called once per batch; an exception from it (or anything else) aborts the import and
    rolls back every row.
    """
    if hash_format not in HASH_FORMATS:
        raise CaseworkError(f"format must be one of {', '.join(HASH_FORMATS)}")
    try:
        total_bytes = list_file.stat().st_size
    except OSError as exc:
        raise CaseworkError(f"cannot read hash list {list_file}: {exc.strerror or exc}") from exc
    report = ImportReport(hash_format)
    # PDQ hashes in id order, 32 bytes each, for the bank after the commit.
    bank_codes = bytearray()
    reader = _ListReader(list_file)
    label_context = case_context(case_id, "label")
    with (
        workspace.session() as session,
        contextlib.closing(reader),
        contextlib.ExitStack() as cleanup,
    ):
        require_open_case(session, case_id)
        writer = _RowWriter(session, bulk=total_bytes >= BULK_INDEX_BYTES)
        cleanup.callback(writer.restore)
        first_signal_id = writer.next_signal_id
        report.first_reference_id = writer.next_reference_id
        parsed = _ParsedBatch(hash_format, workspace.cipher, label_context, report)
        lines: list[tuple[int, str]] = []
        for number, line in reader:
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            lines.append((number, stripped))
            if len(lines) >= BATCH_LINES:
                _write_batch(
                    writer, parsed.of(lines), bank_codes, case_id, hash_format, workspace.actor
                )
                lines.clear()
                if on_progress:
                    on_progress(reader.bytes_read, total_bytes)
        _write_batch(writer, parsed.of(lines), bank_codes, case_id, hash_format, workspace.actor)
        writer.finish()
        if on_progress:
            on_progress(total_bytes, total_bytes)
        if not report.imported:
            report.first_reference_id = None
        audit.record(
            session,
            workspace.actor,
            "ref.import",
            f"case:{case_id}",
            {
                "format": hash_format,
                "imported": report.imported,
                "rejected": report.rejected,
                "references": report.as_dict()["reference_ids"],
            },
        )
    # The store has committed; the bank follows (and catches up from the store if this
    # dies): the raw hashes, with the contiguous signal ids they were stored under.
    codes = np.frombuffer(bank_codes, dtype=np.uint8).reshape(-1, PDQ_BYTES)
    workspace.banks.add_codes("pdq", first_signal_id + np.arange(len(codes)), codes)
    return report


@dataclass
class _Rows:
    """One batch's valid lines: hashes (lowercase hex), their bytes joined, and labels
    (encrypted; None when no line of the batch has one)."""

    values: list[str]
    raw: bytes
    labels: list[bytes | None] | None


class _ParsedBatch:
    """Parses a batch of list lines, rejected ones recorded in the report by number."""

    def __init__(self, hash_format: str, cipher: Any, label_context: str, report: ImportReport):
        self.hash_format = hash_format
        self.width = HASH_FORMATS[hash_format]
        self.cipher = cipher
        self.label_context = label_context
        self.report = report

    def of(self, lines: list[tuple[int, str]]) -> _Rows:
        # A list of bare hashes (the usual case) is checked in one C call per batch: the
        # lengths first, so that no hash can borrow digits from the next one.
        if all(len(line) == self.width for _, line in lines):
            try:
                raw = bytes.fromhex("".join(line for _, line in lines))
            except ValueError:
                raw = b""
            if len(raw) * 2 == self.width * len(lines):
                joined, width = raw.hex(), self.width
                values = [joined[i : i + width] for i in range(0, len(joined), width)]
                self.report.imported += len(values)
                return _Rows(values, raw, None)
        return self._line_by_line(lines)

    def _line_by_line(self, lines: list[tuple[int, str]]) -> _Rows:
        values: list[str] = []
        labels: list[bytes | None] = []
        raw = bytearray()
        for number, line in lines:
            try:
                value, label, code = parse_hash_line(line, self.hash_format)
            except ValueError as exc:
                self.report.rejected += 1
                if len(self.report.rejections) < REJECTIONS_LISTED:
                    self.report.rejections.append(RejectedLine(number, str(exc)))
                continue
            values.append(value)
            # Labels may be file names a victim chose: encrypted like every other label.
            labels.append(self.cipher.encrypt_text(label, self.label_context))
            raw += code
        self.report.imported += len(values)
        return _Rows(values, bytes(raw), labels if any(labels) else None)


def _write_batch(
    writer: _RowWriter,
    rows: _Rows,
    bank_codes: bytearray,
    case_id: str,
    hash_format: str,
    actor: str,
) -> None:
    """Store a batch; PDQ hashes are kept for the bank too (in signal id order)."""
    if not rows.values:
        return
    writer.write(rows.values, rows.labels, case_id, hash_format, actor)
    if hash_format == "pdq":
        bank_codes += rows.raw


def export_hash_list(
    workspace: Workspace,
    hash_format: str,
    write: Callable[[str], Any],
    case_id: str | None = None,
) -> int:
    """Write `hash,ref-ID` lines (the import format) for every consented reference, streamed
    from the database; returns how many. Audited as one `ref.export`."""
    if hash_format not in HASH_FORMATS:
        raise CaseworkError(f"format must be one of {', '.join(HASH_FORMATS)}")
    written = 0
    with workspace.session() as session:
        query = (
            select(Reference.id, Signal.value)
            .join(Signal, Signal.reference_id == Reference.id)
            .where(Signal.kind == hash_format, Reference.consent == "given")
            .order_by(Reference.id, Signal.id)
        )
        if case_id:
            get_case(session, case_id)
            query = query.where(Reference.case_id == case_id)
        rows = session.execute(query.execution_options(yield_per=BATCH_LINES))
        for partition in rows.partitions():
            # Labels can be file names a victim chose; the reference id is what others need.
            write("".join(f"{value},ref-{reference_id}\n" for reference_id, value in partition))
            written += len(partition)
        audit.record(
            session,
            workspace.actor,
            "ref.export",
            f"case:{case_id or '*'}",
            {"format": hash_format, "lines": written},
        )
    return written
