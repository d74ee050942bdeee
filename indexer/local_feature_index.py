"""Candidate search by local features: which references share many ORB descriptors with
the query? A FAISS binary index and its brute-force reference twin.

Each reference contributes up to `PER_ENTRY` of its ORB descriptors, all under its entry
id. A query's descriptors each find their nearest stored descriptor; one within
`MAX_DISTANCE` bits is a vote for its entry. References with the most votes become
candidates for geometric verification. This finds partial copies (a crop inside a
screenshot, a photo pasted into another) that global descriptors and PDQ miss, and works
without torch.

The flat index is exact and suits reference banks of up to some ten thousand images
(~8 KB each); a crawl-history-sized index would swap in FAISS's binary IVF behind this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from detector.local_verify import LocalFeatures

PER_ENTRY = 256
PER_QUERY = 500
MAX_DISTANCE = 40
DESCRIPTOR_BITS = 256


@dataclass(frozen=True)
class VoteHit:
    votes: int
    entry_id: int


def spread_sample(features: LocalFeatures, count: int) -> np.ndarray:
    """Up to `count` descriptors taken evenly through the list (it runs coarse to fine
    over ORB's scale pyramid, so an even sample keeps every scale)."""
    if len(features) <= count:
        return np.ascontiguousarray(features.descriptors, dtype=np.uint8)
    rows = np.linspace(0, len(features) - 1, count).round().astype(int)
    return np.ascontiguousarray(features.descriptors[rows], dtype=np.uint8)


def _tally(entry_ids: np.ndarray, min_votes: int, k: int) -> list[VoteHit]:
    counts = Counter(int(e) for e in entry_ids if e >= 0)
    hits = [VoteHit(votes, entry) for entry, votes in counts.items() if votes >= min_votes]
    return sorted(hits, key=lambda hit: (-hit.votes, hit.entry_id))[:k]


class LocalFeatureIndex(ABC):
    @abstractmethod
    def add(self, entry_ids: list[int], features: list[LocalFeatures]) -> None: ...

    @abstractmethod
    def remove(self, entry_ids: list[int]) -> int:
        """Remove entries; returns how many entries (not descriptors) were present."""

    @abstractmethod
    def search(
        self, features: list[LocalFeatures], k: int, min_votes: int = 3
    ) -> list[list[VoteHit]]: ...

    @abstractmethod
    def __len__(self) -> int:
        """Number of entries (references), not descriptors."""


class BruteForceLocalFeatureIndex(LocalFeatureIndex):
    """Numpy popcount of every query descriptor against every stored one."""

    def __init__(self) -> None:
        self._owners = np.zeros(0, dtype=np.int64)
        self._codes = np.zeros((0, DESCRIPTOR_BITS // 8), dtype=np.uint8)

    def add(self, entry_ids: list[int], features: list[LocalFeatures]) -> None:
        for entry_id, entry_features in zip(entry_ids, features, strict=True):
            codes = spread_sample(entry_features, PER_ENTRY)
            self._codes = np.concatenate([self._codes, codes])
            self._owners = np.concatenate(
                [self._owners, np.full(len(codes), entry_id, dtype=np.int64)]
            )

    def remove(self, entry_ids: list[int]) -> int:
        present = set(np.unique(self._owners).tolist()) & set(entry_ids)
        keep = ~np.isin(self._owners, np.asarray(entry_ids, dtype=np.int64))
        self._owners, self._codes = self._owners[keep], self._codes[keep]
        return len(present)

    def search(
        self, features: list[LocalFeatures], k: int, min_votes: int = 3
    ) -> list[list[VoteHit]]:
        results = []
        for query in features:
            codes = spread_sample(query, PER_QUERY)
            if len(self._codes) == 0 or len(codes) == 0:
                results.append([])
                continue
            distances = np.unpackbits(codes[:, None, :] ^ self._codes[None, :, :], axis=2).sum(
                axis=2
            )
            nearest = distances.argmin(axis=1)
            close = distances[np.arange(len(codes)), nearest] <= MAX_DISTANCE
            results.append(_tally(self._owners[nearest[close]], min_votes, k))
        return results

    def __len__(self) -> int:
        return len(np.unique(self._owners))


class FaissLocalFeatureIndex(LocalFeatureIndex):
    """Exact FAISS binary search; every descriptor stored under its reference's id."""

    def __init__(self, index: faiss.IndexBinaryIDMap | None = None) -> None:
        self._index = index or faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(DESCRIPTOR_BITS))
        ids = faiss.vector_to_array(self._index.id_map) if self._index.ntotal else []
        self._entries = Counter(int(i) for i in ids)

    def add(self, entry_ids: list[int], features: list[LocalFeatures]) -> None:
        for entry_id, entry_features in zip(entry_ids, features, strict=True):
            codes = spread_sample(entry_features, PER_ENTRY)
            if len(codes):
                self._index.add_with_ids(codes, np.full(len(codes), entry_id, dtype=np.int64))
                self._entries[entry_id] += len(codes)

    def remove(self, entry_ids: list[int]) -> int:
        present = [e for e in set(entry_ids) if e in self._entries]
        if present:
            self._index.remove_ids(np.asarray(present, dtype=np.int64))
            for entry in present:
                del self._entries[entry]
        return len(present)

    def search(
        self, features: list[LocalFeatures], k: int, min_votes: int = 3
    ) -> list[list[VoteHit]]:
        results = []
        for query in features:
            codes = spread_sample(query, PER_QUERY)
            if self._index.ntotal == 0 or len(codes) == 0:
                results.append([])
                continue
            distances, owners = self._index.search(codes, 1)
            close = distances[:, 0] <= MAX_DISTANCE
            results.append(_tally(owners[close, 0], min_votes, k))
        return results

    def __len__(self) -> int:
        return len(self._entries)

    def save(self, path: Path) -> None:
        faiss.write_index_binary(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissLocalFeatureIndex:
        return cls(faiss.read_index_binary(str(path)))
