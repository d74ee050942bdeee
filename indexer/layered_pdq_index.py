"""The crawl history's PDQ bank: a mapped table file, and in memory what came after it.

Nightly crawls add millions of items; a reference added today is retro-hunted against
all of them. Kept as a `MihPdqIndex` the history would hold ~100 bytes an entry in
memory and rebuild its tables at every open. Instead, once the history is big enough
(`TABLE_FILE_FROM` entries), its base is written as a table file (`mih_table_file`),
which opens at once and keeps ~66 bytes an entry resident. What later writes add lives
in a small `MihPdqIndex` beside it (delta segments, as for every bank), until the next
compaction writes everything into a new table file.

Every search asks both layers and merges their hits; both are exact, so the sum is.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np
from ansim.detector.pdq import PDQ_BYTES
from ansim.indexer.mih_pdq_index import (
    SEARCH_THREADS,
    MihPdqIndex,
    read_changes,
    write_changes,
)
from ansim.indexer.mih_table_file import MappedMihTables, is_table_file, write_table_file
from ansim.indexer.pdq_index import CodeSearchingPdqIndex, PdqHit, PdqIndex

# From this many entries the history's base is saved as a table file: below it a
# `MihPdqIndex` file (40 bytes an entry) loads and builds its tables in ~2 s at most.
TABLE_FILE_FROM = 1_000_000


class HistoryPdqIndex(MihPdqIndex):
    """The crawl history's PDQ bank while it is held in memory: saved as a table file
    once it reaches `table_file_from` entries (opening then gives a `LayeredPdqIndex`)."""

    def __init__(self, table_file_from: int = TABLE_FILE_FROM, **options: int) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.table_file_from = table_file_from

    def save(self, path: Path) -> None:
        if len(self) < self.table_file_from:
            super().save(path)
            return
        write_table_file(path, len(self), self.live_batches())


class LayeredPdqIndex(CodeSearchingPdqIndex):
    """A table file's entries (`base`) plus those added since it was written (`recent`)."""

    def __init__(self, base: MappedMihTables, recent: MihPdqIndex | None = None) -> None:
        self.base = base
        self.recent = recent if recent is not None else MihPdqIndex()
        # While a write records its changes: the base's entries it removed.
        self._base_removed: list[np.ndarray] | None = None

    @classmethod
    def load(cls, path: Path, threads: int = SEARCH_THREADS) -> LayeredPdqIndex:
        return cls(MappedMihTables(path, threads))

    def __len__(self) -> int:
        return len(self.base) + len(self.recent)

    # -- entries -------------------------------------------------------------------------

    def add(self, entry_ids: list[int], pdq_hexes: list[str]) -> None:
        self.recent.add(entry_ids, pdq_hexes)

    def add_codes(self, entry_ids: np.ndarray, codes: np.ndarray) -> None:
        self.recent.add_codes(entry_ids, codes)

    def remove(self, entry_ids: list[int]) -> int:
        if not len(entry_ids):
            return 0
        removed = self.base.remove(np.asarray(entry_ids, dtype=np.int64))
        if self._base_removed is not None:
            self._base_removed.append(removed)
        return len(removed) + self.recent.remove(entry_ids)

    # -- search --------------------------------------------------------------------------

    def search_codes(self, queries: np.ndarray, max_distance: int) -> list[list[PdqHit]]:
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        if max_distance < 0:
            return [[] for _ in range(len(queries))]
        found = self.base.search_codes(queries.view("<u8").reshape(len(queries), -1), max_distance)
        if len(self.recent):
            later = self.recent.search_codes(queries, max_distance)
            found = [sorted(old + new) for old, new in zip(found, later, strict=True)]
        return found

    def memory_bytes(self) -> int:
        """Bytes resident once searches have warmed the base, plus the recent layer."""
        return self.base.resident_bytes() + self.recent.memory_bytes()

    # -- files ---------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Both layers' live entries as one new table file."""
        batches = chain(self.base.live_batches(), self.recent.live_batches())
        write_table_file(path, len(self), batches)

    def record_changes(self) -> None:
        self.recent.record_changes()
        self._base_removed = []

    def recorded_changes(self) -> int:
        base_removed = sum(len(r) for r in self._base_removed or [])
        return self.recent.recorded_changes() + base_removed

    def stop_recording(self) -> None:
        self.recent.stop_recording()
        self._base_removed = None

    def save_changes(self, path: Path) -> None:
        ids, words, removed = self.recent.take_recorded()
        removed = np.concatenate([removed, *(self._base_removed or [])])
        self._base_removed = None
        write_changes(path, ids, words, removed)

    def apply_changes(self, path: Path) -> None:
        ids, words, gone = read_changes(path)
        self.add_codes(ids, words.view(np.uint8).reshape(len(ids), PDQ_BYTES))
        self.remove(gone)

    merge_changes = staticmethod(MihPdqIndex.merge_changes)


def load_history_pdq(path: Path) -> PdqIndex:
    """The history's PDQ bank from its base file, whichever kind was written."""
    if is_table_file(path):
        return LayeredPdqIndex.load(path)
    return HistoryPdqIndex.load(path)
