"""Which signals go into which index, and keeping those index files in step with the store.

Two sets of banks share this code: the reference bank (what victims reported; owner
"reference") and the crawl history (everything seen; owner "item"). The store is the
source of truth: an index whose size disagrees with the store is rebuilt from it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ansim.detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from ansim.detector.audio import AudioFingerprint
from ansim.detector.descriptor import DESCRIPTOR_DIM
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.text import TextSignature
from ansim.indexer.audio_index import AudioEntry, InvertedAudioIndex
from ansim.indexer.descriptor_index import FaissDescriptorIndex
from ansim.indexer.local_feature_index import FaissLocalFeatureIndex
from ansim.indexer.mih_pdq_index import MihPdqIndex
from ansim.indexer.pdq_index import FaissPdqIndex
from ansim.indexer.persisted import PersistedIndex
from ansim.indexer.text_index import LshTextIndex, ScanTextIndex, TextIndex
from ansim.store.tables import Reference, Signal
from sqlalchemy import func, select
from sqlalchemy.orm import Session

# Decoded ORB features kept per Banks (~60 KB each): the references a crawl verifies against.
LOCAL_FEATURES_CACHED = 1024


@dataclass(frozen=True)
class BankSpec:
    """One index: the Signal.kind that feeds it, and how rows become index entries."""

    name: str
    signal_kind: str
    create: Callable[[], Any]
    load: Callable[[Path], Any]
    add_rows: Callable[[Any, list[Signal]], None]
    # The crawl history's kind of index, where it is searched differently (create, load).
    history: tuple[Callable[[], Any], Callable[[Path], Any]] | None = None

    def factories(self, owner: str) -> tuple[Callable[[], Any], Callable[[Path], Any]]:
        if owner != "reference" and self.history is not None:
            return self.history
        return self.create, self.load


def _add_pdq_rows(index: FaissPdqIndex, rows: list[Signal]) -> None:
    index.add([row.id for row in rows], [row.value or "" for row in rows])


def _add_text_rows(index: TextIndex, rows: list[Signal]) -> None:
    index.add([row.id for row in rows], [TextSignature.from_bytes(row.blob or b"") for row in rows])


def _add_audio_rows(index: InvertedAudioIndex, rows: list[Signal]) -> None:
    for row in rows:
        fingerprint = AudioFingerprint.from_blob(row.blob or b"")
        landmarks = fingerprint.landmarks()
        index.add(
            row.id,
            AudioEntry(landmarks.hashes, landmarks.times, fingerprint.frames, fingerprint.pitches),
        )


def _add_descriptor_rows(index: FaissDescriptorIndex, rows: list[Signal]) -> None:
    vectors = [np.frombuffer(row.blob or b"", dtype=np.float32) for row in rows]
    odd = [row.id for row, vector in zip(rows, vectors, strict=True) if len(vector) != index.dim]
    if odd:
        raise ValueError(
            f"descriptor signals {odd[:5]} are not {index.dim}-d: they come from another "
            "model; withdraw and re-register those references"
        )
    index.add([row.id for row in rows], np.stack(vectors))


def _add_local_feature_rows(index: FaissLocalFeatureIndex, rows: list[Signal]) -> None:
    index.add([row.id for row in rows], [LocalFeatures.from_blob(row.blob or b"") for row in rows])


BANK_SPECS: list[BankSpec] = [
    BankSpec("pdq", "pdq", MihPdqIndex, MihPdqIndex.load, _add_pdq_rows),
    # Crawled pages are matched as long queries against the references' LSH; the history
    # is searched by one short reference at a time, which must be found inside long pages.
    BankSpec(
        "text",
        "text_minhash",
        LshTextIndex,
        LshTextIndex.load,
        _add_text_rows,
        history=(ScanTextIndex, ScanTextIndex.load),
    ),
    BankSpec("audio", AUDIO_SIGNAL, InvertedAudioIndex, InvertedAudioIndex.load, _add_audio_rows),
    BankSpec(
        "descriptor",
        DESCRIPTOR_KIND,
        lambda: FaissDescriptorIndex(DESCRIPTOR_DIM),
        FaissDescriptorIndex.load,
        _add_descriptor_rows,
    ),
    BankSpec(
        "local_features",
        LOCAL_FEATURES_KIND,
        FaissLocalFeatureIndex,
        FaissLocalFeatureIndex.load,
        _add_local_feature_rows,
    ),
]


class Banks:
    def __init__(self, index_dir: Path, owner: str = "reference") -> None:
        self.owner = owner
        prefix = "reference" if owner == "reference" else "history"
        self._persisted: dict[str, PersistedIndex] = {}
        for spec in BANK_SPECS:
            create, load = spec.factories(owner)
            path = index_dir / f"{prefix}-{spec.name}.index"
            self._persisted[spec.name] = PersistedIndex(path, load, create)
        self._specs = {spec.name: spec for spec in BANK_SPECS}
        self._checked: set[str] = set()
        # Signal id -> decoded ORB features. A signal row never changes (a re-hash is a new
        # row), so entries never go stale; a crawl verifies against the same few references
        # thousands of times, and reading their ~50 KB blobs each time cost 9 ms an image.
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

    def _rows(self, session: Session, kind: str) -> list[Signal]:
        return list(
            session.execute(self._owner_filter(select(Signal).where(Signal.kind == kind))).scalars()
        )

    def _store_count(self, session: Session, kind: str) -> int:
        query = self._owner_filter(select(func.count(Signal.id)).where(Signal.kind == kind))
        return int(session.execute(query).scalar_one())

    def index(self, session: Session, name: str) -> Any:
        """The named index, rebuilt first if it disagrees with the store. Only this one is
        checked (and loaded): a photo's retro-hunt need not open a million pages' text."""
        if name not in self._checked:
            self._ensure_one_consistent(session, name)
        return self._persisted[name].read()

    def ensure_consistent(self, session: Session) -> list[str]:
        """Rebuild every index whose entry count differs from the store; returns their names."""
        return [name for name in self._persisted if self._ensure_one_consistent(session, name)]

    def _ensure_one_consistent(self, session: Session, name: str) -> bool:
        persisted, spec = self._persisted[name], self._specs[name]
        expected = self._store_count(session, spec.signal_kind)
        stale = (not persisted.exists() and expected) or len(persisted.read()) != expected
        if stale:
            self._rebuild_one(session, spec)
        self._checked.add(name)
        return bool(stale)

    def rebuild(self, session: Session) -> dict[str, int]:
        """Recreate every index from the store; returns entries per index."""
        return {spec.name: self._rebuild_one(session, spec) for spec in BANK_SPECS}

    def _rebuild_one(self, session: Session, spec: BankSpec) -> int:
        index = spec.factories(self.owner)[0]()
        rows = self._rows(session, spec.signal_kind)
        if rows:
            spec.add_rows(index, rows)
        self._persisted[spec.name].replace(index)
        return len(rows)

    def add(self, rows: Iterable[Signal]) -> None:
        """Put committed signal rows into their indexes (incremental, no rebuild)."""
        by_kind: dict[str, list[Signal]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        for spec in BANK_SPECS:
            if by_kind.get(spec.signal_kind):
                with self._persisted[spec.name].write() as index:
                    spec.add_rows(index, by_kind[spec.signal_kind])

    def remove(self, signal_ids_by_kind: dict[str, list[int]]) -> int:
        """Take entries out of their indexes at once (consent withdrawn, case purged)."""
        removed = 0
        for spec in BANK_SPECS:
            ids = signal_ids_by_kind.get(spec.signal_kind)
            if ids:
                with self._persisted[spec.name].write() as index:
                    removed += index.remove(ids)
        return removed

    def sizes(self) -> dict[str, int]:
        return {name: len(persisted.read()) for name, persisted in self._persisted.items()}
