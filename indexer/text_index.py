"""Near-duplicate text search: MinHash LSH for candidates, exact set overlap to verify.

Both indexes answer the same question: "which stored texts share enough character shingles
with this query?" Each hit carries the exact overlap, measured on the hashed shingle sets
(never on estimates): the Jaccard similarity, how much of the stored text the query
contains (a reported post pasted into a long page) and how much of the query the stored
text contains (a truncated repost). `BruteForceTextIndex` computes that against every
entry; `LshTextIndex` only against the candidates its MinHash LSH bands propose, so
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
)
from ansim.detector.text_match import TextHit
from ansim.detector.text_normalize import NORMALIZER_VERSION
from ansim.indexer.array_file import has_magic, read_arrays, write_arrays

RECALL_AT_SIMILARITY = 0.35
RECALL_TARGET = 0.999
FORMAT_VERSION = 1
# The LSH bank's own file: entries and band tables, memory-mapped on open (array_file).
LSH_FILE_MAGIC = b"ANSIM-TEXT-LSH2\n"


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
        sets = self._shingle_sets(candidates)
        sizes = np.array([len(s) for s in sets], dtype=np.int64)
        rows = np.repeat(np.arange(len(sets)), sizes)
        shared = _shared_counts(query, np.concatenate(sets), rows, len(sets))
        return _hits_from_counts(
            np.asarray(candidates, dtype=np.int64), sizes, shared, len(query),
            min_similarity, min_shared,
        )  # fmt: skip

    def _shingle_sets(self, entry_ids: list[int]) -> list[np.ndarray]:
        return [self._shingles[entry_id] for entry_id in entry_ids]

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
        meta = {"format": FORMAT_VERSION, **_signature_meta(), **self._parameters()}
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
        if has_magic(path, LSH_FILE_MAGIC):
            meta, arrays = read_arrays(path, LSH_FILE_MAGIC)
            _check_meta(path, meta)
            index = cls._from_parameters(meta)
            offsets = np.asarray(arrays["offsets"])
            index._fill(arrays["ids"], arrays["minhashes"], np.diff(offsets), arrays["shingles"])
            return index
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            _check_meta(path, meta)
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


def _signature_meta() -> dict[str, int]:
    """What a saved index's signatures must have been made with to be searched now."""
    return {
        "num_perm": NUM_PERM,
        "seed": MINHASH_SEED,
        "shingle_size": SHINGLE_SIZE,
        "normalizer_version": NORMALIZER_VERSION,
    }


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    expected = {"format": FORMAT_VERSION, **_signature_meta()}
    stale = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if stale:
        raise ValueError(f"text index {path} was built with {stale}: rebuild it")


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
    """MinHash LSH for candidates (banding from `lsh_bands`), exact verification.

    Each band's table is a sorted array of band keys beside the entry rows they belong
    to, searched by binary search: saved as it is and memory-mapped on open (a million
    references open in milliseconds; rebuilding hash tables entry by entry took seconds
    per ten thousand). A band of two rows is keyed by its two values themselves, so the
    candidates are exactly those of a hash table over the bands (datasketch's); wider
    bands are keyed by a 64-bit mix, whose rare collisions only add candidates that the
    exact overlap then turns away. Entries added since the file was written live in
    memory with their own small tables; withdrawn ones are flagged, and both are folded
    into the file at the next save.
    """

    def __init__(self, bands: int | None = None, rows: int | None = None) -> None:
        super().__init__()
        if bands is None or rows is None:
            bands, rows = lsh_bands()
        self.bands, self.rows = bands, rows
        self._base = _BandedEntries.empty(bands)
        self._base_alive = np.zeros(0, dtype=np.bool_)
        self._base_live = 0
        self._added: _BandedEntries | None = None  # tables of the in-memory entries

    # -- entries -------------------------------------------------------------------------

    def _base_row(self, entry_id: int) -> int | None:
        """The file's row holding this live entry, if any (ids are sorted there)."""
        ids = self._base.ids
        row = int(np.searchsorted(ids, entry_id))
        if row < len(ids) and ids[row] == entry_id and self._base_alive[row]:
            return row
        return None

    def _put(self, entry_id: int, minhash: np.ndarray, shingles: np.ndarray) -> None:
        self._withdraw_from_base(entry_id)
        super()._put(entry_id, minhash, shingles)

    def _withdraw_from_base(self, entry_id: int) -> bool:
        row = self._base_row(entry_id)
        if row is None:
            return False
        self._base_alive[row] = False
        self._base_live -= 1
        return True

    def remove(self, entry_ids: Iterable[int]) -> int:
        removed = 0
        for entry_id in entry_ids:
            if self._withdraw_from_base(int(entry_id)):
                removed += 1
            elif int(entry_id) in self._shingles:
                self._drop(int(entry_id))
                removed += 1
        return removed

    def _insert(self, entry_id: int, minhash: np.ndarray) -> None:
        self._added = None

    def _forget(self, entry_id: int) -> None:
        self._added = None

    def __len__(self) -> int:
        return self._base_live + len(self._shingles)

    def __contains__(self, entry_id: int) -> bool:
        return int(entry_id) in self._shingles or self._base_row(int(entry_id)) is not None

    def signature(self, entry_id: int) -> TextSignature:
        row = self._base_row(int(entry_id))
        if row is None:
            return super().signature(entry_id)
        return TextSignature(
            minhash=np.array(self._base.minhashes[row]),
            shingles=np.array(self._base.shingles_of(row)),
            windows=np.zeros((0, NUM_PERM), dtype=np.uint32),
        )

    def _shingle_sets(self, entry_ids: list[int]) -> list[np.ndarray]:
        sets = []
        for entry_id in entry_ids:
            found = self._shingles.get(entry_id)
            if found is None:
                row = self._base_row(entry_id)
                found = self._base.shingles_of(row) if row is not None else np.zeros(0, np.uint32)
            sets.append(found)
        return sets

    # -- candidates ----------------------------------------------------------------------

    def _added_tables(self) -> _BandedEntries:
        if self._added is None:
            ids = np.fromiter(self._shingles, dtype=np.int64, count=len(self._shingles))
            minhashes = (
                np.stack([self._minhashes[int(i)] for i in ids]).astype(np.uint32)
                if len(ids)
                else np.zeros((0, NUM_PERM), dtype=np.uint32)
            )
            self._added = _BandedEntries.build(ids, minhashes, self.bands, self.rows)
        return self._added

    def _candidates(self, signature: TextSignature) -> list[int]:
        # The whole text and each of its windows: one binary search per band for all.
        probes = np.vstack([signature.minhash[None, :], signature.windows]).astype(np.uint32)
        keys = band_keys(probes, self.bands, self.rows)
        rows = self._base.rows_matching(keys)
        found = self._base.ids[rows[self._base_alive[rows]]]
        if self._shingles:
            added = self._added_tables()
            found = np.concatenate([found, added.ids[added.rows_matching(keys)]])
        return np.unique(found).tolist()

    # -- files ---------------------------------------------------------------------------

    def _parameters(self) -> dict[str, int]:
        return {"bands": self.bands, "rows": self.rows}

    @classmethod
    def _from_parameters(cls, meta: dict[str, Any]) -> LshTextIndex:
        return cls(meta.get("bands"), meta.get("rows"))

    def save(self, path: Path) -> None:
        """Every live entry and the band tables, in the memory-mappable layout."""
        kept = np.flatnonzero(self._base_alive)
        added_ids = np.fromiter(self._shingles, dtype=np.int64, count=len(self._shingles))
        ids = np.concatenate([self._base.ids[kept], added_ids]).astype(np.int64)
        order = np.argsort(ids, kind="stable")
        minhashes = np.concatenate(
            [
                np.asarray(self._base.minhashes[kept], dtype=np.uint32),
                np.stack([self._minhashes[int(i)] for i in added_ids]).astype(np.uint32)
                if len(added_ids)
                else np.zeros((0, NUM_PERM), dtype=np.uint32),
            ]
        )[order]
        base_sets, base_sizes = self._base.gather_shingles(kept)
        added_sets = [self._shingles[int(i)] for i in added_ids]
        sizes = np.concatenate(
            [base_sizes, np.fromiter(map(len, added_sets), dtype=np.int64, count=len(added_sets))]
        )
        shingles = np.concatenate([base_sets, *added_sets]).astype(np.uint32)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        sets, sizes = _gather_runs(shingles, starts[order], sizes[order])
        ids = ids[order]
        tables = _BandedEntries.build(ids, minhashes, self.bands, self.rows)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        meta = {"format": FORMAT_VERSION, **_signature_meta(), **self._parameters()}
        arrays = {
            "ids": ids,
            "minhashes": minhashes,
            "offsets": offsets,
            "shingles": sets,
            "band_keys": tables.band_keys,
            "band_rows": tables.band_rows,
        }
        write_arrays(path, LSH_FILE_MAGIC, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> LshTextIndex:
        if not has_magic(path, LSH_FILE_MAGIC):
            return super().load(path)  # a file of the earlier layout: entries re-inserted
        meta, arrays = read_arrays(path, LSH_FILE_MAGIC)
        _check_meta(path, meta)
        index = cls._from_parameters(meta)
        index._base = _BandedEntries(
            ids=arrays["ids"],
            minhashes=arrays["minhashes"],
            offsets=arrays["offsets"],
            shingles=arrays["shingles"],
            band_keys=arrays["band_keys"],
            band_rows=arrays["band_rows"],
        )
        index._base_alive = np.ones(len(arrays["ids"]), dtype=np.bool_)
        index._base_live = len(arrays["ids"])
        return index


_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_keys(minhashes: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: band b of a MinHash is its values b*rows..(b+1)*rows-1.
    Two rows are packed as they are (no collision); more are mixed into 64 bits."""
    values = np.asarray(minhashes, dtype=np.uint64)[:, : bands * rows].reshape(-1, bands, rows)
    if rows <= 2:
        keys = values[:, :, 0].copy()
        if rows == 2:
            keys = (keys << np.uint64(32)) | values[:, :, 1]
        return keys
    keys = np.zeros(values.shape[:2], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = (keys ^ values[:, :, r]) * _MIX
            keys ^= keys >> np.uint64(29)
    return keys


def _gather_runs(
    values: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """values[starts[i] : starts[i] + sizes[i]] for every i, one after another (and sizes)."""
    total = int(sizes.sum())
    if not total:
        return np.zeros(0, dtype=values.dtype), sizes
    run_starts = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
    return np.asarray(values[run_starts + np.arange(total)]), sizes


class _BandedEntries:
    """Entries in rows sorted by id, their shingle sets one after another, and per band
    the band keys sorted with the row each belongs to."""

    def __init__(
        self,
        ids: np.ndarray,
        minhashes: np.ndarray,
        offsets: np.ndarray,
        shingles: np.ndarray,
        band_keys: np.ndarray,
        band_rows: np.ndarray,
    ) -> None:
        self.ids, self.minhashes = ids, minhashes
        self.offsets, self.shingles = offsets, shingles
        self.band_keys, self.band_rows = band_keys, band_rows

    @classmethod
    def empty(cls, bands: int) -> _BandedEntries:
        return cls(
            np.zeros(0, dtype=np.int64),
            np.zeros((0, NUM_PERM), dtype=np.uint32),
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.uint32),
            np.zeros((bands, 0), dtype=np.uint64),
            np.zeros((bands, 0), dtype=np.uint32),
        )

    @classmethod
    def build(cls, ids: np.ndarray, minhashes: np.ndarray, bands: int, rows: int) -> _BandedEntries:
        """Band tables over these entries (no shingle sets: the caller keeps them)."""
        keys = band_keys(minhashes, bands, rows).T
        order = np.argsort(keys, axis=1, kind="stable").astype(np.uint32)
        sorted_keys = np.take_along_axis(keys, order, axis=1)
        entries = cls.empty(bands)
        entries.ids, entries.minhashes = ids, minhashes
        entries.band_keys, entries.band_rows = sorted_keys, order
        return entries

    def shingles_of(self, row: int) -> np.ndarray:
        return self.shingles[self.offsets[row] : self.offsets[row + 1]]

    def gather_shingles(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.asarray(self.offsets)
        starts, sizes = offsets[rows], offsets[rows + 1] - offsets[rows]
        return _gather_runs(self.shingles, starts, sizes)

    def rows_matching(self, keys: np.ndarray) -> np.ndarray:
        """Rows sharing at least one band key with any of these (k, bands) keys."""
        found = []
        for band in range(self.band_keys.shape[0]):
            column = self.band_keys[band]
            if not len(column):
                break
            wanted = keys[:, band]
            low = np.searchsorted(column, wanted, side="left")
            high = np.searchsorted(column, wanted, side="right")
            if (high > low).any():
                rows, _ = _gather_runs(self.band_rows[band], low, high - low)
                found.append(rows)
        if not found:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(found)).astype(np.int64)
