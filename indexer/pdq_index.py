"""PDQ similarity search: a FAISS binary index and its brute-force reference twin.

Both answer the same question, "which stored hashes lie within `max_distance` bits of
each query hash?", so tests can hold the fast one to the simple one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from ansim.detector.faiss_threads import faiss_threads_for
from ansim.detector.pdq import PDQ_BITS, PDQ_BYTES, hex_to_bytes

# Below this many hash comparisons a search is cheap on one thread; starting OpenMP
# threads for it costs more, and on a busy machine (a crawl's hashing workers on every
# core) their spin-waits cost more CPU than the search (benchmarks/RESULTS.md, "crawl").
SINGLE_THREAD_COMPARISONS = 1 << 20


@dataclass(frozen=True, order=True)
class PdqHit:
    distance: int
    entry_id: int


def hashes_to_array(pdq_hexes: list[str]) -> np.ndarray:
    if not pdq_hexes:
        return np.zeros((0, PDQ_BYTES), dtype=np.uint8)
    raw = b"".join(hex_to_bytes(h) for h in pdq_hexes)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(pdq_hexes), PDQ_BYTES)


class PdqIndex(ABC):
    """Entries are (entry_id, hash); ids are the store's signal row ids."""

    @abstractmethod
    def add(self, entry_ids: list[int], pdq_hexes: list[str]) -> None: ...

    @abstractmethod
    def remove(self, entry_ids: list[int]) -> int: ...

    @abstractmethod
    def search(self, pdq_hexes: list[str], max_distance: int) -> list[list[PdqHit]]: ...

    @abstractmethod
    def __len__(self) -> int: ...


class CodeSearchingPdqIndex(PdqIndex):
    """An index that searches raw hashes ((n, 32) uint8): hex queries are parsed once."""

    def search(self, pdq_hexes: list[str], max_distance: int) -> list[list[PdqHit]]:
        if not pdq_hexes:
            return []
        return self.search_codes(hashes_to_array(pdq_hexes), max_distance)

    @abstractmethod
    def search_codes(self, queries: np.ndarray, max_distance: int) -> list[list[PdqHit]]: ...


class BruteForcePdqIndex(PdqIndex):
    """Numpy popcount over every entry: obviously right, O(n) per query."""

    def __init__(self) -> None:
        self._ids = np.zeros(0, dtype=np.int64)
        self._codes = np.zeros((0, PDQ_BYTES), dtype=np.uint8)

    def add(self, entry_ids: list[int], pdq_hexes: list[str]) -> None:
        self._ids = np.concatenate([self._ids, np.asarray(entry_ids, dtype=np.int64)])
        self._codes = np.concatenate([self._codes, hashes_to_array(pdq_hexes)])

    def remove(self, entry_ids: list[int]) -> int:
        keep = ~np.isin(self._ids, np.asarray(entry_ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._ids, self._codes = self._ids[keep], self._codes[keep]
        return removed

    def search(self, pdq_hexes: list[str], max_distance: int) -> list[list[PdqHit]]:
        queries = hashes_to_array(pdq_hexes)
        results = []
        for query in queries:
            distances = np.unpackbits(self._codes ^ query, axis=1).sum(axis=1)
            within = np.nonzero(distances <= max_distance)[0]
            results.append(sorted(PdqHit(int(distances[i]), int(self._ids[i])) for i in within))
        return results

    def __len__(self) -> int:
        return len(self._ids)


class FaissPdqIndex(PdqIndex):
    """Exhaustive FAISS binary search (SIMD popcount): exact, with no structure to build."""

    def __init__(self, index: faiss.IndexBinaryIDMap2 | None = None) -> None:
        self._index = index or faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(PDQ_BITS))

    def add(self, entry_ids: list[int], pdq_hexes: list[str]) -> None:
        if entry_ids:
            self._index.add_with_ids(
                hashes_to_array(pdq_hexes), np.asarray(entry_ids, dtype=np.int64)
            )

    def remove(self, entry_ids: list[int]) -> int:
        if not entry_ids:
            return 0
        return int(self._index.remove_ids(np.asarray(entry_ids, dtype=np.int64)))

    def search(self, pdq_hexes: list[str], max_distance: int) -> list[list[PdqHit]]:
        if not pdq_hexes:
            return []
        if self._index.ntotal == 0:
            return [[] for _ in pdq_hexes]
        # FAISS range search keeps distances strictly below the radius.
        with faiss_threads_for(self._index.ntotal * len(pdq_hexes), SINGLE_THREAD_COMPARISONS):
            limits, distances, ids = self._index.range_search(
                hashes_to_array(pdq_hexes), max_distance + 1
            )
        return [
            sorted(PdqHit(int(distances[j]), int(ids[j])) for j in range(limits[i], limits[i + 1]))
            for i in range(len(pdq_hexes))
        ]

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index_binary(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissPdqIndex:
        return cls(faiss.read_index_binary(str(path)))
