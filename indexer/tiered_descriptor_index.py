"""The descriptor bank's index: exact while small, compressed past a size.

Below `ivf_from` live entries the bank is a `FaissDescriptorIndex` (exact, no training:
an IVF trained on a few thousand vectors would have cells too coarse to trust). When an
add brings it to `ivf_from`, its vectors move into an `IvfDescriptorIndex` (cells trained
on them, exact re-rank of each short list); it stays compressed if removals later take it
below the threshold (no flapping between the two at the boundary).

The file is the inner index's own: the IVF's starts with its magic, anything else is a
FAISS index file, so a bank written before this class opens unchanged. A write's adds and
removals can be kept as a delta segment (`persisted.Segmentable`): 520 bytes an added
entry at 128-d, 8 a removed one, instead of the whole bank at every change.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from ansim.indexer.descriptor_index import (
    DescriptorHit,
    DescriptorIndex,
    FaissDescriptorIndex,
    as_matrix,
)
from ansim.indexer.ivf_descriptor_index import FILE_MAGIC, IvfDescriptorIndex

# Entries at which the bank trains its IVF: ~50 cells' worth of training vectors per cell
# at 4 sqrt(n) cells (1,800 cells), and an exact scan of 200k x 128-d is ~100 MB, ~10 ms.
IVF_FROM = 200_000
CHANGES_MAGIC = b"ANSIM-DESC-DELTA-1\n"


class TieredDescriptorIndex(DescriptorIndex):
    def __init__(
        self,
        dim: int,
        ivf_from: int | None = None,
        inner: FaissDescriptorIndex | IvfDescriptorIndex | None = None,
    ) -> None:
        self.dim = dim
        # Read at construction, not bound as a default: tests lower it for a small bank.
        self.ivf_from = IVF_FROM if ivf_from is None else ivf_from
        self.inner: FaissDescriptorIndex | IvfDescriptorIndex = inner or FaissDescriptorIndex(dim)
        # While a write is recorded: its added ids and vectors, its removed ids.
        self._recording = False
        self._added: list[tuple[np.ndarray, np.ndarray]] = []
        self._removed: list[np.ndarray] = []

    @property
    def compressed(self) -> bool:
        return isinstance(self.inner, IvfDescriptorIndex)

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        if not self.compressed and len(self.inner) + len(entry_ids) >= self.ivf_from:
            # The batch that crosses the threshold goes straight into the IVF: through the
            # exact index it would be held twice more (its copy there and the copy read
            # back out), 5 GB each for a 10M-entry rebuild.
            self.inner = _compressed(self.inner, entry_ids, vectors)
        else:
            self.inner.add(entry_ids, vectors)
        if self._recording and len(entry_ids):
            self._added.append(
                (np.asarray(entry_ids, dtype=np.int64), as_matrix(vectors, self.dim).copy())
            )

    def remove(self, entry_ids: list[int]) -> int:
        if self._recording and len(entry_ids):
            self._removed.append(np.asarray(entry_ids, dtype=np.int64))
        return self.inner.remove(entry_ids)

    def search(
        self, vectors: np.ndarray, k: int, min_similarity: float = -1.0
    ) -> list[list[DescriptorHit]]:
        return self.inner.search(vectors, k, min_similarity)

    def __len__(self) -> int:
        return len(self.inner)

    def save(self, path: Path) -> None:
        self.inner.save(path)

    # -- delta segments (persisted.Segmentable) -------------------------------------------

    def record_changes(self) -> None:
        self._recording, self._added, self._removed = True, [], []

    def recorded_changes(self) -> int:
        return sum(len(ids) for ids, _ in self._added) + sum(len(ids) for ids in self._removed)

    def stop_recording(self) -> None:
        self._recording, self._added, self._removed = False, [], []

    def save_changes(self, path: Path) -> None:
        ids = np.concatenate([np.zeros(0, np.int64), *(ids for ids, _ in self._added)])
        vectors = np.concatenate(
            [np.zeros((0, self.dim), np.float32), *(vectors for _, vectors in self._added)]
        )
        removed = np.concatenate([np.zeros(0, np.int64), *self._removed])
        _write_changes(path, ids, vectors, removed)
        self.stop_recording()

    def apply_changes(self, path: Path) -> None:
        """Apply a segment `save_changes` wrote (adds first: a write may add then remove)."""
        ids, vectors, removed = _read_changes(path)
        self.add(ids, vectors)
        self.remove(removed)

    @staticmethod
    def merge_changes(sources: list[Path], target: Path) -> int:
        """The segments `sources` (in order) as one; returns its entries + removals. An
        entry added and removed within them leaves no trace (ids are never reused)."""
        parts = [_read_changes(path) for path in sources]
        ids = np.concatenate([part[0] for part in parts])
        vectors = np.concatenate([part[1] for part in parts])
        removed = np.concatenate([part[2] for part in parts])
        kept = ~np.isin(ids, removed)
        removed_before = removed[~np.isin(removed, ids)]
        _write_changes(target, ids[kept], vectors[kept], removed_before)
        return int(kept.sum()) + len(removed_before)

    @classmethod
    def load(cls, path: Path, ivf_from: int | None = None) -> TieredDescriptorIndex:
        with open(path, "rb") as source:
            compressed = source.read(len(FILE_MAGIC)) == FILE_MAGIC
        inner = IvfDescriptorIndex.load(path) if compressed else FaissDescriptorIndex.load(path)
        index = cls(inner.dim, ivf_from, inner)
        if not compressed and len(inner) >= index.ivf_from:
            index.inner = _compressed(inner)  # a large bank written before the IVF existed
        return index


def _write_changes(path: Path, ids: np.ndarray, vectors: np.ndarray, removed: np.ndarray) -> None:
    with open(path, "wb") as out:
        out.write(CHANGES_MAGIC)
        out.write(np.array([len(ids), vectors.shape[1], len(removed)], dtype=np.int64).tobytes())
        out.write(ids.astype(np.int64).tobytes())
        out.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        out.write(removed.astype(np.int64).tobytes())


def _read_changes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(path, "rb") as source:
        if source.read(len(CHANGES_MAGIC)) != CHANGES_MAGIC:
            raise ValueError(f"{path} is not a descriptor delta segment")
        added, dim, removed = np.frombuffer(source.read(3 * 8), dtype=np.int64).tolist()
        ids = np.fromfile(source, dtype=np.int64, count=added)
        vectors = np.fromfile(source, dtype=np.float32, count=added * dim)
        gone = np.fromfile(source, dtype=np.int64, count=removed)
    if len(ids) != added or len(vectors) != added * dim or len(gone) != removed:
        raise ValueError(f"{path} is truncated")
    return ids, vectors.reshape(added, dim), gone


def _compressed(
    exact: FaissDescriptorIndex,
    entry_ids: list[int] | None = None,
    vectors: np.ndarray | None = None,
) -> IvfDescriptorIndex:
    """The exact index's entries and a new batch in a trained IVF (the cells trained on
    all of them)."""
    id_map = exact.faiss_index
    count = int(id_map.ntotal)
    ivf = IvfDescriptorIndex(exact.dim, min_train=0)
    if count:
        ids = faiss.vector_to_array(id_map.id_map).astype(np.int64)
        ivf.add(ids, id_map.index.reconstruct_n(0, count))
        id_map.reset()  # its vectors are in the IVF now
    if entry_ids is not None and vectors is not None:
        ivf.add(entry_ids, vectors)
    ivf.build()
    return ivf
