"""The signal banks: one index file per indexed signal type (`ansim.signal_types`),
kept in step with the store.

Two sets of banks share this code: the reference bank (what victims reported; owner
"reference") and the crawl history (everything seen; owner "item"). The store is the
source of truth: an index whose size disagrees with the store is rebuilt from it.

Banks opened with `follow_store` are a replica (a Ray node's own copy of the reference
banks, `pipeline.ray_engine`): nobody else writes their files, so instead of following
other processes' writes through the files they compare each index with the store's
checkpoint (entries, last id) at every use and catch up from the store when it differs.
"""

from __future__ import annotations

import dataclasses
import fcntl
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.signals import MediaSignals
from ansim.indexer.persisted import PersistedIndex
from ansim.signal_types import Direction, SignalType, indexed_types, records_of
from ansim.store.tables import BankCounter, Reference, Signal
from sqlalchemy import select
from sqlalchemy.orm import Session

# Decoded ORB features kept per Banks: the references a crawl verifies against.
LOCAL_FEATURES_CACHED = 1024
# Rows read from the store at a time when an index is rebuilt or caught up.
STREAM_BATCH = 100_000
# What an index reads of a signal row (a `StoredSignal`), as plain columns.
STORED_COLUMNS = (
    Signal.id,
    Signal.kind,
    Signal.value,
    Signal.quality,
    Signal.frame,
    Signal.timestamp,
    Signal.blob,
)


def signal_rows(signals: MediaSignals) -> list[Signal]:
    """The rows to store for one file's signals, as each signal type encodes them."""
    return [Signal(**dataclasses.asdict(record)) for record in records_of(signals)]


class Banks:
    def __init__(
        self, index_dir: Path, owner: str = "reference", follow_store: bool = False
    ) -> None:
        self.owner = owner
        self.follow_store = follow_store
        self._index_dir = index_dir
        self._prefix = "reference" if owner == "reference" else "history"
        self.direction = Direction.SCAN if owner == "reference" else Direction.RETRO_HUNT
        self._types: dict[str, SignalType] = {t.name: t for t in indexed_types()}
        self._persisted: dict[str, PersistedIndex] = {}
        for name, signal_type in self._types.items():
            assert signal_type.index is not None
            create, load = signal_type.index.factories(self.direction)
            path = index_dir / f"{self._prefix}-{name}.index"
            self._persisted[name] = PersistedIndex(path, load, create)
        self._checked: set[str] = set()
        # Signal id -> decoded ORB features. A signal row never changes (a re-hash is a new
        # row), so entries never go stale; a crawl verifies against the same few references
        # thousands of times, and reading their blobs each time was a large share of an
        # image's matching (benchmarks/RESULTS.md, "crawl").
        self._local_features: OrderedDict[int, LocalFeatures] = OrderedDict()

    def _owner_filter(self, query):  # type: ignore[no-untyped-def]
        if self.owner == "reference":
            return query.join(Reference, Signal.reference_id == Reference.id).where(
                Reference.consent == "given"
            )
        return query.where(Signal.item_id.is_not(None))

    @property
    def owner_column(self) -> Any:
        """The Signal column naming this bank's owners."""
        return Signal.reference_id if self.owner == "reference" else Signal.item_id

    def owners_of(
        self, session: Session, entry_ids: set[int], model_id: str | None = None
    ) -> dict[int, int]:
        """signal id -> owner id for index hits: the consented reference in a reference bank,
        the crawled item in the crawl history. `model_id` keeps only descriptors of that model."""
        if not entry_ids:
            return {}
        query = self._owner_filter(
            select(Signal.id, self.owner_column).where(Signal.id.in_(entry_ids))
        )
        if model_id is not None:
            query = query.where(Signal.value == model_id)
        return {signal_id: owner_id for signal_id, owner_id in session.execute(query)}

    def local_features_of(self, session: Session, owner_ids: set[int]) -> dict[int, LocalFeatures]:
        """Owner id -> its stored ORB features (for verification), for owners that have them."""
        if not owner_ids:
            return {}
        # The kind is filtered here, not in SQL: given both, SQLite's planner (no ANALYZE
        # statistics) walks every ORB row through the (kind, item_id) index.
        rows = session.execute(
            select(self.owner_column, Signal.id, Signal.kind).where(
                self.owner_column.in_(owner_ids)
            )
        )
        signal_of_owner = {
            owner_id: signal_id for owner_id, signal_id, kind in rows if kind == LOCAL_FEATURES_KIND
        }
        missing = set(signal_of_owner.values()) - set(self._local_features)
        if missing:
            blobs = session.execute(select(Signal.id, Signal.blob).where(Signal.id.in_(missing)))
            for signal_id, blob in blobs:
                if blob:
                    self._local_features[signal_id] = LocalFeatures.from_blob(blob)
        found = {}
        for owner_id, signal_id in signal_of_owner.items():
            if signal_id in self._local_features:
                self._local_features.move_to_end(signal_id)
                found[owner_id] = self._local_features[signal_id]
        while len(self._local_features) > LOCAL_FEATURES_CACHED:
            self._local_features.popitem(last=False)
        return found

    def _stream_rows(self, session: Session, kind: str, after_id: int = 0) -> Iterator[list[Any]]:
        """This bank's signal rows of `kind` with ids above `after_id`, in id order and in
        batches of plain rows (id, kind, value, ...: no ORM objects, never all at once)."""
        query = self._owner_filter(
            select(*STORED_COLUMNS).where(Signal.kind == kind, Signal.id > after_id)
        ).order_by(Signal.id)
        result = session.execute(query.execution_options(yield_per=STREAM_BATCH))
        yield from result.partitions()

    def _store_checkpoint(self, session: Session, kind: str) -> tuple[int, int]:
        """(entries, last signal id ever held) of this bank in the store: one row that the
        store's triggers keep (migration 0007), not a count over millions of signal rows."""
        found = session.execute(
            select(BankCounter.entries, BankCounter.last_id).where(
                BankCounter.kind == kind, BankCounter.owner == self.owner
            )
        ).one_or_none()
        return (int(found[0]), int(found[1])) if found else (0, 0)

    def index(self, session: Session, name: str) -> Any:
        """The named index, rebuilt first if it disagrees with the store. Only this one is
        checked (and loaded): a photo's retro-hunt need not open a million pages' text.
        Checked once per process, or at every use when following the store (a replica)."""
        if name not in self._checked or (
            self.follow_store and not self._level_with_store(session, name)
        ):
            self._ensure_one_consistent(session, name)
        return self._persisted[name].read()

    def bring_level(self, session: Session) -> list[str]:
        """Catch up (or rebuild) every index whose files disagree with the store's checkpoint,
        without loading the ones that agree; returns their names. A replica opened again
        thus drops what the store no longer holds (a purge) even in indexes not yet used."""
        stale = [name for name in self._persisted if not self._level_with_store(session, name)]
        for name in stale:
            self._ensure_one_consistent(session, name)
        return stale

    def _level_with_store(self, session: Session, name: str) -> bool:
        """Whether the index's files cover exactly the store's checkpoint (one row read
        from the store, the small manifest from disk)."""
        entries, last_id = self._store_checkpoint(session, name)
        manifest = self._persisted[name].manifest()
        if manifest is None:
            return entries == 0
        return manifest.last_id == last_id and manifest.count == entries

    def ensure_consistent(self, session: Session) -> list[str]:
        """Rebuild every index whose entry count differs from the store; returns their names."""
        return [name for name in self._persisted if self._ensure_one_consistent(session, name)]

    def _ensure_one_consistent(self, session: Session, name: str) -> bool:
        """Checked by checkpoint: the index must have seen the store's newest signal (ids
        only grow; newer rows, which a crash between the store's commit and the index's
        write left out, are read from the store and added) and then hold as many entries
        as the store, or it is rebuilt. Returns whether it had to change.

        A replica's check holds a lock per index: the actors of a node share its files
        and would otherwise catch up on the same rows twice. (A home's index folder is not
        locked here: it may be read by processes that cannot write there.)"""
        with self._checking(name):
            return self._check_one(session, name)

    @contextmanager
    def _checking(self, name: str) -> Iterator[None]:
        if not self.follow_store:
            yield
            return
        # Not named like the index's own files, which a compaction deletes when unlisted.
        self._index_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self._index_dir / f"{self._prefix}-{name}.check.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _check_one(self, session: Session, name: str) -> bool:
        persisted = self._persisted[name]
        expected, store_last_id = self._store_checkpoint(session, name)
        if not persisted.exists():
            if expected:
                self._rebuild_one(session, name)
            self._checked.add(name)
            return bool(expected)
        caught_up = False
        try:
            seen = persisted.last_id() or 0
            caught_up = store_last_id > seen and self._catch_up(session, name, seen)
            stale = len(persisted.read()) != expected
        except (OSError, ValueError):  # a damaged file: the store has it all
            stale = True
        if stale:
            self._rebuild_one(session, name)
        self._checked.add(name)
        return bool(stale or caught_up)

    def _catch_up(self, session: Session, name: str, seen: int) -> bool:
        """Add the store's rows newer than the index's checkpoint; returns whether any."""
        spec = self._types[name].index
        assert spec is not None
        added = False
        for batch in self._stream_rows(session, name, after_id=seen):
            with self._persisted[name].write(last_added=batch[-1].id) as index:
                spec.add_rows(index, batch)
            added = True
        return added

    def rebuild(self, session: Session) -> dict[str, int]:
        """Recreate every index from the store; returns entries per index."""
        return {name: self._rebuild_one(session, name) for name in self._persisted}

    def _rebuild_one(self, session: Session, name: str) -> int:
        spec = self._types[name].index
        assert spec is not None
        index = spec.factories(self.direction)[0]()
        # The store's checkpoint, read first: the newest id it ever held, which a withdrawn
        # newest row leaves above the rows streamed (the index then is not "behind").
        entries, last_id = 0, self._store_checkpoint(session, name)[1]
        for batch in self._stream_rows(session, name):
            spec.add_rows(index, batch)
            entries, last_id = entries + len(batch), max(last_id, batch[-1].id)
        self._persisted[name].replace(index, last_id)
        return entries

    def adopt(self, session: Session, name: str, index: Any) -> None:
        """Install an index built elsewhere from exactly the store's rows of this bank (a
        benchmark seeding millions of rows), with the store's checkpoint."""
        _, last_id = self._store_checkpoint(session, name)
        self._persisted[name].replace(index, last_id)

    def add(self, rows: Iterable[Signal]) -> None:
        """Put committed signal rows into their indexes (incremental, no rebuild)."""
        by_kind: dict[str, list[Signal]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        for name, signal_type in self._types.items():
            if by_kind.get(name):
                assert signal_type.index is not None
                added = by_kind[name]
                with self._persisted[name].write(max(row.id for row in added)) as index:
                    signal_type.index.add_rows(index, added)

    def add_codes(self, name: str, entry_ids: np.ndarray, codes: np.ndarray) -> None:
        """Put committed entries into an index that takes raw codes (`add_codes(ids,
        codes)`, the PDQ bank's): a bulk import, without a row object per entry."""
        if not len(entry_ids):
            return
        with self._persisted[name].write(int(np.max(entry_ids))) as index:
            index.add_codes(entry_ids, codes)

    def remove(self, signal_ids_by_kind: dict[str, list[int]], erase: bool = False) -> int:
        """Take entries out of their indexes at once (consent withdrawn, case purged).

        A withdrawal is a small delta segment; `erase` (a purge) rewrites every index
        whose files may still hold removed values (these, or earlier withdrawals' still
        in the base), so that no file of the home keeps them."""
        removed = 0
        for name, persisted in self._persisted.items():
            ids = signal_ids_by_kind.get(name)
            if ids:
                with persisted.write(erase=erase) as index:
                    removed += index.remove(ids)
            elif erase and persisted.exists():
                persisted.erase_removed()
        return removed

    def status(self, session: Session) -> list[dict[str, Any]]:
        """Per signal type, without rebuilding anything: entries in the index and in the
        store, the index's checkpoint against the store's newest signal, and whether the
        index is fresh (a stale one is rebuilt on its next use)."""
        shown = []
        for name, persisted in self._persisted.items():
            expected, store_last_id = self._store_checkpoint(session, name)
            exists = persisted.exists()
            entries = len(persisted.read()) if exists else 0
            checkpoint = persisted.last_id() if exists else None
            behind = expected > 0 and (checkpoint is None or store_last_id > checkpoint)
            shown.append(
                {
                    "signal_type": name,
                    "entries": entries,
                    "store_entries": expected,
                    "checkpoint": checkpoint,
                    "store_last_id": store_last_id,
                    "fresh": not behind and entries == expected,
                    "saved_at": persisted.path.stat().st_mtime if exists else None,
                }
            )
        return shown

    def sizes(self) -> dict[str, int]:
        return {name: len(persisted.read()) for name, persisted in self._persisted.items()}

    def disk_bytes(self, name: str) -> int:
        """Bytes on disk of one index (manifest, base and delta segments)."""
        return self._persisted[name].disk_bytes()
