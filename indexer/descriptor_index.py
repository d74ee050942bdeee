"""Descriptor similarity search: a FAISS float index and its brute-force reference twin.

Entries are (entry_id, unit vector); the score is the inner product, which for unit
vectors is the cosine similarity. Both classes answer "the k stored vectors most similar
to each query, at or above `min_similarity`", so tests can hold the fast one to the
simple one. Entry ids are the store's signal row ids, as in the PDQ bank.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from ansim.detector.faiss_threads import faiss_threads_for

# Searches below this many vector comparisons run on one thread (threads cost more).
SINGLE_THREAD_COMPARISONS = 1 << 20


@dataclass(frozen=True)
class DescriptorHit:
    similarity: float
    entry_id: int


def as_matrix(vectors: np.ndarray | list[np.ndarray], dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return matrix


def _ranked(
    similarities: np.ndarray, ids: np.ndarray, min_similarity: float
) -> list[DescriptorHit]:
    hits = [
        DescriptorHit(float(s), int(i))
        for s, i in zip(similarities, ids, strict=True)
        if i >= 0 and s >= min_similarity
    ]
    # Ties broken by id so both twins order equal scores the same way.
    return sorted(hits, key=lambda hit: (-hit.similarity, hit.entry_id))


class DescriptorIndex(ABC):
    dim: int

    @abstractmethod
    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def remove(self, entry_ids: list[int]) -> int: ...

    @abstractmethod
    def search(
        self, vectors: np.ndarray, k: int, min_similarity: float = -1.0
    ) -> list[list[DescriptorHit]]: ...

    @abstractmethod
    def __len__(self) -> int: ...


class BruteForceDescriptorIndex(DescriptorIndex):
    """A numpy matrix product against every entry: obviously right, O(n) per query."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        self._ids = np.concatenate([self._ids, np.asarray(entry_ids, dtype=np.int64)])
        self._vectors = np.concatenate([self._vectors, as_matrix(vectors, self.dim)])

    def remove(self, entry_ids: list[int]) -> int:
        keep = ~np.isin(self._ids, np.asarray(entry_ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        return removed

    def search(
        self, vectors: np.ndarray, k: int, min_similarity: float = -1.0
    ) -> list[list[DescriptorHit]]:
        queries = as_matrix(vectors, self.dim)
        similarities = queries @ self._vectors.T
        return [_ranked(row, self._ids, min_similarity)[:k] for row in similarities]

    def __len__(self) -> int:
        return len(self._ids)


class FaissDescriptorIndex(DescriptorIndex):
    """Exact inner-product search (IndexFlatIP under an id map).

    Flat is exact and needs no training, which suits reference banks of tens of thousands;
    a crawl history of many millions would swap in an IVF or HNSW index behind this class.
    """

    def __init__(self, dim: int, index: faiss.IndexIDMap2 | None = None) -> None:
        self.dim = dim
        self._index = index or faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def add(self, entry_ids: list[int], vectors: np.ndarray) -> None:
        if len(entry_ids):
            self._index.add_with_ids(
                as_matrix(vectors, self.dim), np.asarray(entry_ids, dtype=np.int64)
            )

    def remove(self, entry_ids: list[int]) -> int:
        if not len(entry_ids):
            return 0
        return int(self._index.remove_ids(np.asarray(entry_ids, dtype=np.int64)))

    def search(
        self, vectors: np.ndarray, k: int, min_similarity: float = -1.0
    ) -> list[list[DescriptorHit]]:
        queries = as_matrix(vectors, self.dim)
        if self._index.ntotal == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        # A bank of references (not a crawl history of millions) is searched on one thread.
        with faiss_threads_for(self._index.ntotal * len(queries), SINGLE_THREAD_COMPARISONS):
            similarities, ids = self._index.search(queries, min(k, self._index.ntotal))
        return [
            _ranked(s_row, i_row, min_similarity)
            for s_row, i_row in zip(similarities, ids, strict=True)
        ]

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def faiss_index(self) -> faiss.IndexIDMap2:
        """The FAISS index itself (its flat vectors and id map), to convert it."""
        return self._index

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissDescriptorIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)
