"""A toy signal type, to show (and test) that a new signal is one folder plus one line in
`ansim.signal_types.REGISTRY`: a 4x4x4 colour histogram of an image, matched by L2
distance. Not a useful copy detector; it exists only for the tests."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from ansim.detector.decision import Decision, MatchRules
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.signal_types import BankReader, IndexSpec, SignalRecord, StoredSignal

NAME = "colour_histogram"
BINS = 4
DIM = BINS**3
MAX_DISTANCE = 0.05  # squared L2 between normalized histograms


def colour_histogram(rgb: np.ndarray) -> np.ndarray:
    levels = (rgb.reshape(-1, 3).astype(np.int32) * BINS) // 256
    cells = (levels[:, 0] * BINS + levels[:, 1]) * BINS + levels[:, 2]
    counts = np.bincount(cells, minlength=DIM).astype(np.float32)
    return counts / counts.sum()


class FaissHistogramIndex:
    """Exact L2 search in FAISS (the fast index)."""

    def __init__(self, index: faiss.IndexIDMap2 | None = None) -> None:
        self._index = index or faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, np.asarray(entry_ids, dtype=np.int64))

    def remove(self, entry_ids: list[int]) -> int:
        return int(self._index.remove_ids(np.asarray(entry_ids, dtype=np.int64)))

    def search(self, vector: np.ndarray, max_distance: float) -> list[tuple[int, float]]:
        if self._index.ntotal == 0:
            return []
        limits, distances, ids = self._index.range_search(vector[None], max_distance)
        return [(int(ids[j]), float(distances[j])) for j in range(limits[0], limits[1])]

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        path.write_bytes(faiss.serialize_index(self._index).tobytes())

    @classmethod
    def load(cls, path: Path) -> FaissHistogramIndex:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        return cls(faiss.deserialize_index(data))


class BruteForceHistogramIndex:
    """Every stored vector compared with numpy (the twin)."""

    def __init__(self) -> None:
        self._vectors: dict[int, np.ndarray] = {}

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        self._vectors.update(zip(entry_ids, vectors, strict=True))

    def remove(self, entry_ids: list[int]) -> int:
        return sum(self._vectors.pop(entry_id, None) is not None for entry_id in entry_ids)

    def search(self, vector: np.ndarray, max_distance: float) -> list[tuple[int, float]]:
        found = []
        for entry_id, stored in self._vectors.items():
            distance = float(((stored - vector) ** 2).sum())
            if distance < max_distance:
                found.append((entry_id, distance))
        return found

    def __len__(self) -> int:
        return len(self._vectors)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        ids = np.asarray(list(self._vectors), dtype=np.int64)
        vectors = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, DIM))
        np.savez(buffer, ids=ids, vectors=vectors)
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> BruteForceHistogramIndex:
        index = cls()
        with np.load(io.BytesIO(path.read_bytes())) as data:
            index.add(list(data["ids"]), data["vectors"].astype(np.float32))
        return index


def _add_rows(index: Any, rows: Sequence[StoredSignal]) -> None:
    vectors = np.stack([np.frombuffer(row.blob or b"", dtype=np.float32) for row in rows])
    index.add([row.id for row in rows], vectors)


def _probe(index: Any, vector: np.ndarray) -> list[tuple[int, float]]:
    return sorted((entry_id, round(d, 4)) for entry_id, d in index.search(vector, MAX_DISTANCE))


class ColourHistogramType:
    name = NAME
    modalities = frozenset({"image"})
    index = IndexSpec(
        create=FaissHistogramIndex,
        load=FaissHistogramIndex.load,
        add_rows=_add_rows,
        brute_force=BruteForceHistogramIndex,
        probe=_probe,
    )

    def hash(self, media: Media, signals: MediaSignals) -> None:
        signals.extra[self.name] = colour_histogram(media.rgb)

    def values(self, signals: MediaSignals) -> list[np.ndarray]:
        vector = signals.extra.get(self.name)
        return [vector] if vector is not None else []

    def records(self, vector: np.ndarray) -> list[SignalRecord]:
        return [SignalRecord(kind=self.name, blob=vector.astype(np.float32).tobytes())]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        decisions = []
        for vector in self.values(signals):
            hits = bank.index(self.name).search(vector, MAX_DISTANCE)
            owners = bank.owners_of({entry_id for entry_id, _ in hits})
            decisions += [
                Decision(owners[e], self.name, d, 1.0 - d, f"colour histogram distance {d:.3f}")
                for e, d in hits
                if e in owners
            ]
        return decisions
