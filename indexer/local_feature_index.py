"""Candidate search by local features: which references share many ORB descriptors with
the query? A FAISS binary index and its brute-force reference twin.

Each reference contributes a sample of its ORB descriptors, all under its entry id:
`PER_ENTRY_COARSE` from its half-size octave and `PER_ENTRY_FINE` from its full-size
one (a copy shrunk into a screenshot or another picture meets the reference at half
size). A query's full-size descriptors each find their `NEIGHBOURS` nearest stored ones;
one whose nearest lies within `MAX_DISTANCE` bits, and clearly nearer than the nearest
descriptor of any other reference (Lowe's ratio test across references), is a vote for
that reference. References with the most votes become candidates for verification.
This finds partial copies that global descriptors and PDQ miss, and works without torch.

The FAISS index searches exactly (flat) while small and, past `IVF_MIN_CODES`
descriptors (12 references), through an inverted file trained on the stored descriptors
(probing `nprobe` of its lists): past a dozen references a flat search is the dearer of
the two, and the inverted file proposes the same top candidate for nearly every crawled
photo at the same candidate recall on the robust benchmark (see benchmarks/RESULTS.md,
"crawl" and "robust"). The codes themselves are kept beside the search structure, so
removal is exact and a rebuild retrains on everything stored.
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from ansim.detector.faiss_threads import faiss_threads_for
from ansim.detector.local_verify import LocalFeatures

PER_ENTRY_FINE = 128
PER_ENTRY_COARSE = 384
PER_QUERY = 500
MAX_DISTANCE = 48
RATIO = 0.85
NEIGHBOURS = 8
DESCRIPTOR_BITS = 256
CODE_BYTES = DESCRIPTOR_BITS // 8
# 12 references; FAISS wants >= 39 training codes per list: 2 * sqrt(6,144) lists get 39.
IVF_MIN_CODES = 6144
TRAINING_CODES_PER_LIST = 48
# Searches below this many descriptor comparisons run on one thread (detector.faiss_threads).
SINGLE_THREAD_COMPARISONS = 1 << 26


@dataclass(frozen=True)
class VoteHit:
    votes: int
    entry_id: int


def _even(rows: np.ndarray, count: int) -> np.ndarray:
    if len(rows) <= count:
        return rows
    return rows[np.linspace(0, len(rows) - 1, count).round().astype(int)]


def entry_sample(features: LocalFeatures) -> np.ndarray:
    """The descriptors a reference puts in the index: some fine, more coarse."""
    fine = np.arange(features.fine_count)
    coarse = np.arange(features.fine_count, len(features))
    rows = np.concatenate([_even(fine, PER_ENTRY_FINE), _even(coarse, PER_ENTRY_COARSE)])
    return np.ascontiguousarray(features.descriptors[rows], dtype=np.uint8)


def query_sample(features: LocalFeatures) -> np.ndarray:
    """The descriptors a query searches with: its full-size ones, evenly thinned."""
    rows = _even(np.arange(features.fine_count), PER_QUERY)
    return np.ascontiguousarray(features.descriptors[rows], dtype=np.uint8)


def tally(distances: np.ndarray, owners: np.ndarray, min_votes: int, k: int) -> list[VoteHit]:
    """Votes from each query descriptor's nearest stored ones, (n, NEIGHBOURS) ascending
    (owner -1 and large distances where fewer neighbours were found)."""
    first = owners[:, 0]
    other = (owners != first[:, None]) & (owners >= 0)
    runner_up = np.where(other, distances, DESCRIPTOR_BITS + 1).min(axis=1)
    voting = (first >= 0) & (distances[:, 0] <= MAX_DISTANCE)
    voting &= distances[:, 0] < RATIO * runner_up
    counts = Counter(first[voting].tolist())
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


class _StoredCodes:
    """The descriptors and their owners, as plain arrays (the source for any structure)."""

    def __init__(self, codes: np.ndarray | None = None, owners: np.ndarray | None = None):
        self.codes = codes if codes is not None else np.zeros((0, CODE_BYTES), np.uint8)
        self.owners = owners if owners is not None else np.zeros(0, np.int64)

    def append(self, entry_ids: list[int], features: list[LocalFeatures]) -> tuple:
        codes = [entry_sample(f) for f in features]
        owners = [np.full(len(c), e, dtype=np.int64) for e, c in zip(entry_ids, codes, strict=True)]
        new_codes = np.concatenate([np.zeros((0, CODE_BYTES), np.uint8), *codes])
        new_owners = np.concatenate([np.zeros(0, np.int64), *owners])
        self.codes = np.concatenate([self.codes, new_codes])
        self.owners = np.concatenate([self.owners, new_owners])
        return new_codes, new_owners

    def drop(self, entry_ids: list[int]) -> int:
        present = set(np.unique(self.owners).tolist()) & set(entry_ids)
        keep = ~np.isin(self.owners, np.asarray(list(present), dtype=np.int64))
        self.codes, self.owners = self.codes[keep], self.owners[keep]
        return len(present)

    def entries(self) -> int:
        return len(np.unique(self.owners))


class BruteForceLocalFeatureIndex(LocalFeatureIndex):
    """Numpy popcount of every query descriptor against every stored one."""

    def __init__(self) -> None:
        self._stored = _StoredCodes()

    def add(self, entry_ids: list[int], features: list[LocalFeatures]) -> None:
        self._stored.append(entry_ids, features)

    def remove(self, entry_ids: list[int]) -> int:
        return self._stored.drop(entry_ids)

    def search(
        self, features: list[LocalFeatures], k: int, min_votes: int = 3
    ) -> list[list[VoteHit]]:
        stored = self._stored
        results = []
        for query in features:
            codes = query_sample(query)
            if len(stored.codes) == 0 or len(codes) == 0:
                results.append([])
                continue
            xor = codes[:, None, :] ^ stored.codes[None, :, :]
            distances = np.unpackbits(xor, axis=2).sum(axis=2)
            nearest = np.argsort(distances, axis=1, kind="stable")[:, :NEIGHBOURS]
            found = np.take_along_axis(distances, nearest, axis=1)
            results.append(tally(found, stored.owners[nearest], min_votes, k))
        return results

    def __len__(self) -> int:
        return self._stored.entries()


class FaissLocalFeatureIndex(LocalFeatureIndex):
    def __init__(
        self,
        stored: _StoredCodes | None = None,
        nprobe: int | None = None,
        trained: faiss.IndexBinaryIVF | None = None,
    ) -> None:
        """`trained`: an inverted file already holding exactly `stored` (a saved index), used
        as is; otherwise the search structure is built (and trained) from `stored`."""
        self._stored = stored or _StoredCodes()
        self._nprobe = nprobe
        if trained is not None and trained.ntotal == len(self._stored.codes):
            self._index = trained
            if nprobe:
                trained.nprobe = nprobe
        else:
            self._index = self._build()

    def _build(self) -> faiss.IndexBinary:
        codes, owners = self._stored.codes, self._stored.owners
        if len(codes) < IVF_MIN_CODES:
            index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(DESCRIPTOR_BITS))
        else:
            lists = int(min(4096, max(64, 2 * math.sqrt(len(codes)))))
            index = faiss.IndexBinaryIVF(
                faiss.IndexBinaryFlat(DESCRIPTOR_BITS), DESCRIPTOR_BITS, lists
            )
            # k-means on a sample: FAISS's default of up to 256 codes per list makes the
            # first training of a crawl history the dearest step of its flush, and a much
            # smaller sample finds the same nearest codes for nearly every query (see
            # benchmarks/RESULTS.md, "crawl").
            index.cp.max_points_per_centroid = TRAINING_CODES_PER_LIST
            index.train(codes)
            index.nprobe = self._nprobe or max(8, lists // 16)
        if len(codes):
            index.add_with_ids(codes, owners)
        return index

    @property
    def uses_inverted_file(self) -> bool:
        return isinstance(self._index, faiss.IndexBinaryIVF)

    def add(self, entry_ids: list[int], features: list[LocalFeatures]) -> None:
        before = len(self._stored.codes)
        codes, owners = self._stored.append(entry_ids, features)
        if before < IVF_MIN_CODES <= len(self._stored.codes):
            self._index = self._build()  # large enough now to train an inverted file
        elif len(codes):
            self._index.add_with_ids(codes, owners)

    def remove(self, entry_ids: list[int]) -> int:
        removed = self._stored.drop(entry_ids)
        if removed:
            self._index.remove_ids(np.asarray(entry_ids, dtype=np.int64))
        return removed

    def search(
        self, features: list[LocalFeatures], k: int, min_votes: int = 3
    ) -> list[list[VoteHit]]:
        results = []
        for query in features:
            codes = query_sample(query)
            if self._index.ntotal == 0 or len(codes) == 0:
                results.append([])
                continue
            # An inverted file compares each query with nprobe lists, not everything.
            compared = self._index.ntotal
            if isinstance(self._index, faiss.IndexBinaryIVF):
                compared = compared * self._index.nprobe // max(1, self._index.nlist)
            with faiss_threads_for(len(codes) * compared, SINGLE_THREAD_COMPARISONS):
                distances, owners = self._index.search(codes, NEIGHBOURS)
            distances = np.where(owners >= 0, distances, DESCRIPTOR_BITS + 1)
            results.append(tally(distances, owners, min_votes, k))
        return results

    def __len__(self) -> int:
        return self._stored.entries()

    def save(self, path: Path) -> None:
        # The trained inverted file is kept too: retraining it on load took minutes for a
        # crawl history of millions of codes (every `ref add` opens that history).
        arrays = {"codes": self._stored.codes, "owners": self._stored.owners}
        if isinstance(self._index, faiss.IndexBinaryIVF):
            arrays["inverted_file"] = faiss.serialize_index_binary(self._index)
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> FaissLocalFeatureIndex:
        with np.load(io.BytesIO(path.read_bytes())) as data:
            stored = _StoredCodes(data["codes"], data["owners"])
            trained = None
            if "inverted_file" in data:
                trained = faiss.deserialize_index_binary(data["inverted_file"])
        return cls(stored, trained=trained)
