"""The descriptor bank's index: exact while small, compressed past a size.

Below `ivf_from` live entries the bank is a `FaissDescriptorIndex` (exact, no training:
an IVF trained on a few thousand vectors would have cells too coarse to trust). When an
add brings it to `ivf_from`, its vectors move into an `IvfDescriptorIndex` (cells trained
on them, exact re-rank of each short list); it stays compressed if removals later take it
below the threshold (no flapping between the two at the boundary).

The file is the inner index's own: the IVF's starts with its magic, anything else is a
FAISS index file, so a bank written before this class opens unchanged.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from ansim.indexer.descriptor_index import DescriptorHit, DescriptorIndex, FaissDescriptorIndex
from ansim.indexer.ivf_descriptor_index import FILE_MAGIC, IvfDescriptorIndex

# Entries at which the bank trains its IVF: ~50 cells' worth of training vectors per cell
# at 4 sqrt(n) cells (1,800 cells), and an exact scan of 200k x 128-d is ~100 MB, ~10 ms.
IVF_FROM = 200_000


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

    @property
    def compressed(self) -> bool:
        return isinstance(self.inner, IvfDescriptorIndex)

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        self.inner.add(entry_ids, vectors)
        if not self.compressed and len(self.inner) >= self.ivf_from:
            self.inner = _compressed(self.inner)

    def remove(self, entry_ids: list[int]) -> int:
        return self.inner.remove(entry_ids)

    def search(
        self, vectors: np.ndarray, k: int, min_similarity: float = -1.0
    ) -> list[list[DescriptorHit]]:
        return self.inner.search(vectors, k, min_similarity)

    def __len__(self) -> int:
        return len(self.inner)

    def save(self, path: Path) -> None:
        self.inner.save(path)

    @classmethod
    def load(cls, path: Path, ivf_from: int | None = None) -> TieredDescriptorIndex:
        with open(path, "rb") as source:
            compressed = source.read(len(FILE_MAGIC)) == FILE_MAGIC
        inner = IvfDescriptorIndex.load(path) if compressed else FaissDescriptorIndex.load(path)
        index = cls(inner.dim, ivf_from, inner)
        if not compressed and len(inner) >= index.ivf_from:
            index.inner = _compressed(inner)  # a large bank written before the IVF existed
        return index


def _compressed(exact: FaissDescriptorIndex) -> IvfDescriptorIndex:
    """The exact index's entries in a trained IVF (the cells trained on all of them)."""
    id_map = exact.faiss_index
    count = int(id_map.ntotal)
    ids = faiss.vector_to_array(id_map.id_map).astype(np.int64)
    vectors = id_map.index.reconstruct_n(0, count) if count else np.zeros((0, exact.dim))
    ivf = IvfDescriptorIndex(exact.dim, min_train=0)
    ivf.add(ids, vectors)
    ivf.build()
    return ivf
