"""Near-duplicate text search: MinHash LSH for candidates, exact set overlap to verify.

Both indexes answer the same question: "which stored texts share enough character shingles
with this query?" Each hit carries the exact overlap, measured on the hashed shingle sets
(never on estimates): the Jaccard similarity, how much of the stored text the query
contains (a reported post pasted into a long page) and how much of the query the stored
text contains (a truncated repost). `BruteForceTextIndex` computes that against every
entry; `LshTextIndex` only against the candidates datasketch's MinHash LSH proposes, so
tests can hold the fast one to the simple one.

LSH is tuned for recall, not at datasketch's default `threshold` (the point where the
S-curve is steep, about 50% recall): `lsh_bands` picks the most selective banding that
still finds a pair of Jaccard `RECALL_AT_SIMILARITY` with probability `RECALL_TARGET`.
Long queries also send their window MinHashes (`detector.text.window_minhashes`), which is
how a short post inside a long page becomes a candidate at all: the whole page's Jaccard
with the post is tiny, one window's is at least 3/8.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.text import (
    MINHASH_SEED,
    NUM_PERM,
    SHINGLE_SIZE,
    TextSignature,
    to_minhash,
)
from detector.text_normalize import NORMALIZER_VERSION

RECALL_AT_SIMILARITY = 0.35
RECALL_TARGET = 0.999
FORMAT_VERSION = 1


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that LSH with `bands` bands of `rows` rows proposes a pair of this Jaccard."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def lsh_bands(
    num_perm: int = NUM_PERM,
    similarity: float = RECALL_AT_SIMILARITY,
    recall: float = RECALL_TARGET,
) -> tuple[int, int]:
    """(bands, rows): the most rows per band (fewest spurious candidates) that keeps
    `recall` at `similarity`."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 2 or candidate_probability(similarity, bands, rows) < recall:
            break
        best = (bands, rows)
    return best


@dataclass(frozen=True)
class TextHit:
    entry_id: int
    shared: int  # distinct shingles in common
    jaccard: float
    entry_containment: float  # share of the stored text's shingles found in the query
    query_containment: float  # share of the query's shingles found in the stored text

    @property
    def similarity(self) -> float:
        return max(self.jaccard, self.entry_containment, self.query_containment)


def _check_compatible(signature: TextSignature) -> None:
    if signature.normalizer_version != NORMALIZER_VERSION or signature.shingle_size != SHINGLE_SIZE:
        raise ValueError(
            f"text signature from normalizer v{signature.normalizer_version} with "
            f"{signature.shingle_size}-shingles; this index holds v{NORMALIZER_VERSION} with "
            f"{SHINGLE_SIZE}-shingles: rebuild the signatures"
        )


@dataclass(frozen=True)
class _FlatShingles:
    """Every stored shingle in one array, with the row of its entry: what a containment
    scan reads (uint32 + int32 per shingle)."""

    entry_ids: np.ndarray  # int64[entries]
    shingles: np.ndarray  # concatenated shingle sets
    rows: np.ndarray  # int32[shingles]: index into entry_ids

    @classmethod
    def of(cls, sets: dict[int, np.ndarray]) -> _FlatShingles:
        entry_ids = np.fromiter(sets, dtype=np.int64, count=len(sets))
        arrays = [sets[int(entry_id)] for entry_id in entry_ids]
        sizes = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        rows = np.repeat(np.arange(len(arrays), dtype=np.int32), sizes)
        return cls(entry_ids, np.concatenate(arrays), rows)


class TextIndex(ABC):
    """Entries are (entry_id, TextSignature); ids are the store's signal row ids."""

    def __init__(self) -> None:
        self._minhashes: dict[int, np.ndarray] = {}
        self._shingles: dict[int, np.ndarray] = {}
        self._flat: _FlatShingles | None = None  # built by the first containment scan

    def add(self, entry_ids: list[int], signatures: list[TextSignature]) -> None:
        if len(entry_ids) != len(signatures):
            raise ValueError("one signature per entry id")
        for entry_id, signature in zip(entry_ids, signatures, strict=True):
            _check_compatible(signature)
            entry_id = int(entry_id)
            if entry_id in self._shingles:
                self._drop(entry_id)
            self._minhashes[entry_id] = signature.minhash
            self._shingles[entry_id] = signature.shingles
            self._insert(entry_id, signature)
        self._flat = None

    def remove(self, entry_ids: Iterable[int]) -> int:
        removed = 0
        for entry_id in entry_ids:
            if int(entry_id) in self._shingles:
                self._drop(int(entry_id))
                removed += 1
        return removed

    def _drop(self, entry_id: int) -> None:
        self._forget(entry_id)
        del self._minhashes[entry_id]
        del self._shingles[entry_id]
        self._flat = None

    def search(
        self,
        signatures: list[TextSignature],
        min_similarity: float = 0.3,
        min_shared: int = 1,
        scan_containment: bool = False,
    ) -> list[list[TextHit]]:
        """For each query, the entries whose exact Jaccard or containment (either way) is at
        least `min_similarity` with at least `min_shared` shingles in common, best first.

        `scan_containment` also proposes every entry that holds `min_similarity` of the
        query's shingles, by scanning all stored shingles: a short query inside long
        stored texts, which no candidate search on whole-text MinHashes proposes (windows
        are computed for queries only). A retro-hunt's one query can afford the scan.
        """
        results = []
        for signature in signatures:
            _check_compatible(signature)
            candidates = self._candidates(signature)
            if scan_containment:
                candidates = sorted(
                    set(candidates).union(self._containing(signature.shingles, min_similarity))
                )
            hits = [
                hit
                for hit in self._verify(signature.shingles, candidates)
                if hit.shared >= min_shared and hit.similarity >= min_similarity
            ]
            hits.sort(key=lambda hit: (-hit.similarity, -hit.shared, hit.entry_id))
            results.append(hits)
        return results

    def _containing(self, query: np.ndarray, min_share: float) -> list[int]:
        """Entries holding at least `min_share` of the query's shingles (exact counts)."""
        if len(query) == 0 or not self._shingles:
            return []
        if self._flat is None:
            self._flat = _FlatShingles.of(self._shingles)
        flat = self._flat
        # The query set is sorted and unique: one binary search per stored shingle.
        positions = np.minimum(np.searchsorted(query, flat.shingles), len(query) - 1)
        found = query[positions] == flat.shingles
        shared = np.bincount(flat.rows[found], minlength=len(flat.entry_ids))
        needed = max(1, math.ceil(min_share * len(query)))
        return flat.entry_ids[shared >= needed].tolist()

    def _verify(self, query: np.ndarray, candidates: list[int]) -> list[TextHit]:
        """Exact overlap of the query's shingle set with each candidate's, in one pass."""
        if not candidates or len(query) == 0:
            return []
        sets = [self._shingles[c] for c in candidates]
        sizes = np.array([len(s) for s in sets], dtype=np.int64)
        stored = np.concatenate(sets)
        # The query set is sorted and unique: one binary search per stored shingle.
        positions = np.minimum(np.searchsorted(query, stored), len(query) - 1)
        found = query[positions] == stored
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shared = np.add.reduceat(found.astype(np.int64), offsets)
        union = sizes + len(query) - shared
        return [
            TextHit(
                entry_id=c,
                shared=int(shared[i]),
                jaccard=float(shared[i] / union[i]),
                entry_containment=float(shared[i] / sizes[i]),
                query_containment=float(shared[i] / len(query)),
            )
            for i, c in enumerate(candidates)
            if shared[i]
        ]

    def __len__(self) -> int:
        return len(self._shingles)

    def __contains__(self, entry_id: int) -> bool:
        return int(entry_id) in self._shingles

    def signature(self, entry_id: int) -> TextSignature:
        return TextSignature(
            minhash=self._minhashes[entry_id],
            shingles=self._shingles[entry_id],
            windows=np.zeros((0, NUM_PERM), dtype=np.uint32),
        )

    @abstractmethod
    def _insert(self, entry_id: int, signature: TextSignature) -> None: ...

    @abstractmethod
    def _forget(self, entry_id: int) -> None: ...

    @abstractmethod
    def _candidates(self, signature: TextSignature) -> list[int]: ...


class BruteForceTextIndex(TextIndex):
    """Exact overlap with every entry: obviously right, O(total shingles) per query."""

    def _insert(self, entry_id: int, signature: TextSignature) -> None:
        pass

    def _forget(self, entry_id: int) -> None:
        pass

    def _candidates(self, signature: TextSignature) -> list[int]:
        return list(self._shingles)


class LshTextIndex(TextIndex):
    """datasketch MinHash LSH for candidates (banding from `lsh_bands`), exact verification."""

    def __init__(self, bands: int | None = None, rows: int | None = None) -> None:
        super().__init__()
        if bands is None or rows is None:
            bands, rows = lsh_bands()
        self.bands, self.rows = bands, rows
        from datasketch import MinHashLSH  # loads scipy: only when a text index is used

        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=(bands, rows))

    def _insert(self, entry_id: int, signature: TextSignature) -> None:
        self._lsh.insert(entry_id, to_minhash(signature.minhash), check_duplication=False)

    def _forget(self, entry_id: int) -> None:
        self._lsh.remove(entry_id)

    def _candidates(self, signature: TextSignature) -> list[int]:
        # One MinHash object serves every window: LSH reads only its hash values, and
        # building (validating) a fresh one per window cost more than the lookup.
        probe = to_minhash(signature.minhash)
        found: set[int] = set(self._lsh.query(probe))
        for window in signature.windows:
            probe.hashvalues = window
            found.update(self._lsh.query(probe))
        return sorted(found)

    def save(self, path: Path) -> None:
        ids = np.fromiter(self._shingles, dtype=np.int64, count=len(self._shingles))
        sizes = np.array([len(self._shingles[i]) for i in ids], dtype=np.int64)
        meta = {
            "format": FORMAT_VERSION,
            "num_perm": NUM_PERM,
            "seed": MINHASH_SEED,
            "shingle_size": SHINGLE_SIZE,
            "normalizer_version": NORMALIZER_VERSION,
            "bands": self.bands,
            "rows": self.rows,
        }
        with open(path, "wb") as handle:
            np.savez(
                handle,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                ids=ids,
                minhashes=np.stack([self._minhashes[i] for i in ids]).astype(np.uint32)
                if len(ids)
                else np.zeros((0, NUM_PERM), dtype=np.uint32),
                sizes=sizes,
                shingles=np.concatenate([self._shingles[i] for i in ids]).astype(np.uint32)
                if len(ids)
                else np.zeros(0, dtype=np.uint32),
            )

    @classmethod
    def load(cls, path: Path) -> LshTextIndex:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            expected = {
                "format": FORMAT_VERSION,
                "num_perm": NUM_PERM,
                "seed": MINHASH_SEED,
                "shingle_size": SHINGLE_SIZE,
                "normalizer_version": NORMALIZER_VERSION,
            }
            stale = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
            if stale:
                raise ValueError(f"text index {path} was built with {stale}: rebuild it")
            index = cls(meta["bands"], meta["rows"])
            ids, minhashes, sizes = data["ids"], data["minhashes"], data["sizes"]
            shingles = np.split(data["shingles"], np.cumsum(sizes)[:-1]) if len(ids) else []
        for entry_id, minhash, entry_shingles in zip(ids, minhashes, shingles, strict=True):
            entry_id = int(entry_id)
            index._minhashes[entry_id] = minhash
            index._shingles[entry_id] = entry_shingles
            index._lsh.insert(entry_id, to_minhash(minhash), check_duplication=False)
        return index
