"""Near-duplicate text search: MinHash LSH for candidates, exact set overlap to verify.

Both indexes answer the same question: "which stored texts share enough character shingles
with this query?" Each hit carries the exact overlap, measured on the hashed shingle sets
(never on estimates): the Jaccard similarity, how much of the stored text the query
contains (a reported post pasted into a long page) and how much of the query the stored
text contains (a truncated repost). `BruteForceTextIndex` computes that against every
entry; `LshTextIndex` only against the candidates datasketch's MinHash LSH proposes, so
tests can hold the fast one to the simple one. `ScanTextIndex` is exact like brute force,
in one vectorized pass over every stored shingle: the crawl history's index, searched by
one new reference at a time, where a short post must be found inside long pages.

LSH is tuned for recall, not at datasketch's default `threshold` (the point where the
S-curve is steep, about 50% recall): `lsh_bands` picks the most selective banding that
still finds a pair of Jaccard `RECALL_AT_SIMILARITY` with probability `RECALL_TARGET`.
Long queries also send their window MinHashes (`detector.text.window_minhashes`), which is
how a short post inside a long page becomes a candidate at all: the whole page's Jaccard
with the post is tiny, one window's is at least 3/8.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import numpy as np
from ansim.detector.text import (
    MINHASH_SEED,
    NUM_PERM,
    SHINGLE_SIZE,
    TextSignature,
    to_minhash,
)
from ansim.detector.text_match import TextHit
from ansim.detector.text_normalize import NORMALIZER_VERSION

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


def _check_compatible(signature: TextSignature) -> None:
    if signature.normalizer_version != NORMALIZER_VERSION or signature.shingle_size != SHINGLE_SIZE:
        raise ValueError(
            f"text signature from normalizer v{signature.normalizer_version} with "
            f"{signature.shingle_size}-shingles; this index holds v{NORMALIZER_VERSION} with "
            f"{SHINGLE_SIZE}-shingles: rebuild the signatures"
        )


class TextIndex(ABC):
    """Entries are (entry_id, TextSignature); ids are the store's signal row ids."""

    def __init__(self) -> None:
        self._minhashes: dict[int, np.ndarray] = {}
        self._shingles: dict[int, np.ndarray] = {}

    def add(self, entry_ids: list[int], signatures: list[TextSignature]) -> None:
        if len(entry_ids) != len(signatures):
            raise ValueError("one signature per entry id")
        for entry_id, signature in zip(entry_ids, signatures, strict=True):
            _check_compatible(signature)
            self._put(int(entry_id), signature.minhash, signature.shingles)

    def _put(self, entry_id: int, minhash: np.ndarray, shingles: np.ndarray) -> None:
        if entry_id in self._shingles:
            self._drop(entry_id)
        self._minhashes[entry_id] = minhash
        self._shingles[entry_id] = shingles
        self._insert(entry_id, minhash)

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

    def search(
        self,
        signatures: list[TextSignature],
        min_similarity: float = 0.3,
        min_shared: int = 1,
    ) -> list[list[TextHit]]:
        """For each query, the entries whose exact Jaccard or containment (either way) is at
        least `min_similarity` with at least `min_shared` shingles in common, best first."""
        results = []
        for signature in signatures:
            _check_compatible(signature)
            hits = self._hits(signature, min_similarity, min_shared)
            hits.sort(key=lambda hit: (-hit.similarity, -hit.shared, hit.entry_id))
            results.append(hits)
        return results

    def _hits(
        self, signature: TextSignature, min_similarity: float, min_shared: int
    ) -> list[TextHit]:
        """Exact overlap of the query's shingle set with each candidate's, in one pass."""
        query, candidates = signature.shingles, self._candidates(signature)
        if not candidates or len(query) == 0:
            return []
        sets = [self._shingles[c] for c in candidates]
        sizes = np.array([len(s) for s in sets], dtype=np.int64)
        rows = np.repeat(np.arange(len(sets)), sizes)
        shared = _shared_counts(query, np.concatenate(sets), rows, len(sets))
        return _hits_from_counts(
            np.asarray(candidates, dtype=np.int64), sizes, shared, len(query),
            min_similarity, min_shared,
        )  # fmt: skip

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
    def _insert(self, entry_id: int, minhash: np.ndarray) -> None: ...

    @abstractmethod
    def _forget(self, entry_id: int) -> None: ...

    @abstractmethod
    def _candidates(self, signature: TextSignature) -> list[int]: ...

    def _parameters(self) -> dict[str, int]:
        """What `load` needs besides the entries to make the index again."""
        return {}

    def save(self, path: Path) -> None:
        ids = np.fromiter(self._shingles, dtype=np.int64, count=len(self._shingles))
        sizes = np.array([len(self._shingles[i]) for i in ids], dtype=np.int64)
        meta = {
            "format": FORMAT_VERSION,
            "num_perm": NUM_PERM,
            "seed": MINHASH_SEED,
            "shingle_size": SHINGLE_SIZE,
            "normalizer_version": NORMALIZER_VERSION,
            **self._parameters(),
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
    def load(cls, path: Path) -> Self:
        """Any text index's file loads into any kind: the entries are the same."""
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
            index = cls._from_parameters(meta)
            index._fill(data["ids"], data["minhashes"], data["sizes"], data["shingles"])
        return index

    def _fill(
        self, ids: np.ndarray, minhashes: np.ndarray, sizes: np.ndarray, shingles: np.ndarray
    ) -> None:
        """Entries from a saved file: `shingles` holds their sets one after another."""
        sets = np.split(shingles, np.cumsum(sizes)[:-1]) if len(ids) else []
        for entry_id, minhash, entry_shingles in zip(ids, minhashes, sets, strict=True):
            self._put(int(entry_id), minhash, entry_shingles)

    @classmethod
    def _from_parameters(cls, meta: dict[str, Any]) -> Self:
        return cls()


def _shared_counts(
    query: np.ndarray, stored: np.ndarray, rows: np.ndarray, sets: int
) -> np.ndarray:
    """How many shingles of each of `sets` stored sets (concatenated in `stored`, `rows`
    says whose each is) the query's sorted unique set holds: one binary search each."""
    positions = np.minimum(np.searchsorted(query, stored), len(query) - 1)
    found = query[positions] == stored
    return np.bincount(rows[found], minlength=sets)


def _hits_from_counts(
    entry_ids: np.ndarray,
    sizes: np.ndarray,
    shared: np.ndarray,
    query_size: int,
    min_similarity: float,
    min_shared: int,
) -> list[TextHit]:
    """The hits among entries of these set sizes sharing `shared` shingles with a query of
    `query_size` (one row per entry): at least one shingle, `min_shared` and
    `min_similarity` (Jaccard or containment either way)."""
    union = sizes + query_size - shared
    with np.errstate(divide="ignore", invalid="ignore"):  # empty sets share nothing
        jaccard = shared / union
        entry_containment = np.where(sizes > 0, shared / sizes, 0.0)
    query_containment = shared / query_size
    similarity = np.maximum(np.maximum(jaccard, entry_containment), query_containment)
    keep = (shared > 0) & (shared >= min_shared) & (similarity >= min_similarity)
    return [
        TextHit(
            entry_id=int(entry_ids[i]),
            shared=int(shared[i]),
            jaccard=float(jaccard[i]),
            entry_containment=float(entry_containment[i]),
            query_containment=float(query_containment[i]),
        )
        for i in np.flatnonzero(keep)
    ]


class BruteForceTextIndex(TextIndex):
    """Exact overlap with every entry: obviously right, O(total shingles) per query."""

    def _insert(self, entry_id: int, minhash: np.ndarray) -> None:
        pass

    def _forget(self, entry_id: int) -> None:
        pass

    def _candidates(self, signature: TextSignature) -> list[int]:
        return list(self._shingles)


class ScanTextIndex(BruteForceTextIndex):
    """Exact like its parent, computed in one vectorized scan of every stored shingle and
    with nothing to build on load: for the crawl history, which only a retro-hunt's single
    query reads. It finds a short reference inside long crawled pages, which no
    whole-text MinHash proposes (pages are stored without window MinHashes)."""

    def __init__(self) -> None:
        super().__init__()
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _put(self, entry_id: int, minhash: np.ndarray, shingles: np.ndarray) -> None:
        super()._put(entry_id, minhash, shingles)
        self._flat = None

    def _drop(self, entry_id: int) -> None:
        super()._drop(entry_id)
        self._flat = None

    def _fill(
        self, ids: np.ndarray, minhashes: np.ndarray, sizes: np.ndarray, shingles: np.ndarray
    ) -> None:
        super()._fill(ids, minhashes, sizes, shingles)
        if len(np.unique(ids)) == len(ids):  # the file's order is then the scan's order
            rows = np.repeat(np.arange(len(ids), dtype=np.int32), sizes)
            self._flat = (ids.astype(np.int64), sizes.astype(np.int64), shingles, rows)

    def _flattened(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(entry ids, set sizes, all shingles, the entry row of each), kept until a change."""
        if self._flat is None:
            ids = np.fromiter(self._shingles, dtype=np.int64, count=len(self._shingles))
            sets = [self._shingles[int(i)] for i in ids]
            sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
            rows = np.repeat(np.arange(len(sets), dtype=np.int32), sizes)
            stored = np.concatenate(sets) if sets else np.zeros(0, np.uint32)
            self._flat = (ids, sizes, stored, rows)
        return self._flat

    def _hits(
        self, signature: TextSignature, min_similarity: float, min_shared: int
    ) -> list[TextHit]:
        query = signature.shingles
        if len(query) == 0 or not self._shingles:
            return []
        ids, sizes, stored, rows = self._flattened()
        shared = _shared_counts(query, stored, rows, len(ids))
        return _hits_from_counts(ids, sizes, shared, len(query), min_similarity, min_shared)


class LshTextIndex(TextIndex):
    """datasketch MinHash LSH for candidates (banding from `lsh_bands`), exact verification."""

    def __init__(self, bands: int | None = None, rows: int | None = None) -> None:
        super().__init__()
        if bands is None or rows is None:
            bands, rows = lsh_bands()
        self.bands, self.rows = bands, rows
        from datasketch import MinHashLSH  # loads scipy: only when a text index is used

        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=(bands, rows))

    def _insert(self, entry_id: int, minhash: np.ndarray) -> None:
        self._lsh.insert(entry_id, to_minhash(minhash), check_duplication=False)

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

    def _parameters(self) -> dict[str, int]:
        return {"bands": self.bands, "rows": self.rows}

    @classmethod
    def _from_parameters(cls, meta: dict[str, Any]) -> LshTextIndex:
        return cls(meta.get("bands"), meta.get("rows"))
