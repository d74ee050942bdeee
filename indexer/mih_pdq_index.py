"""Exact PDQ search at tens of millions of entries: multi-index hashing.

The 256 bits are cut into m chunks. Two hashes within r bits differ in at most
f = ceil((r + 1) / m) - 1 bits of at least one chunk (pigeonhole: if every chunk differed
in f + 1 or more, the total would exceed r). So probing, in each chunk's table, every key
within f bits of the query's chunk finds every entry within r bits, and a full 256-bit
popcount on those candidates keeps exactly the true hits. More generally the chunks may
be probed within different f_c, as long as sum(f_c + 1) > r: evenly spread flips often
overshoot (11 chunks within 2 bits cover 33 > 32), and the spare is taken off a chunk.
Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index hashing" (CVPR 2012).

Why not FAISS `IndexBinaryMultiHash` (what python-threatexchange uses, 16 x 16 bits)?
Measured here at 1M random hashes it takes 2.2 ms a query on one thread (a hash set of
~4,000 candidates per query), its hash maps hold 8-byte ids per chunk, and it has no
`remove_ids`: a withdrawn reference could not leave it. This index keeps each chunk's
table as a counting-sorted array of 4-byte row numbers with a dense offsets table, picks
the chunk width from the bank's size (wider chunks, fewer candidates, as the bank grows),
and drops duplicates without a set (a hit is kept only in the first chunk that finds it).

Entries added since the tables were built sit in a short tail that is scanned
exhaustively; removed entries are tombstoned and dropped at the next build. The file
holds only ids and hashes (40 bytes an entry); after a load the tables are rebuilt
(counting sort: ~2 s at 1M, ~12 s of CPU at 10M here) once enough queries call for them.
A write's changes can also be kept as a delta segment (`record_changes` ...
`save_changes`, 40 bytes an added entry and 8 a removed one) that `indexer.persisted`
publishes on top of the base file.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import faiss
import numpy as np
from ansim.detector.pdq import PDQ_BITS, PDQ_BYTES
from ansim.indexer.pdq_index import CodeSearchingPdqIndex, PdqHit, hashes_to_array

WORDS = PDQ_BYTES // 8
FILE_MAGIC = b"ANSIM-PDQ-MIH-1\n"
# A delta segment (`save_changes`): the entries one write added and the ids it removed.
CHANGES_MAGIC = b"ANSIM-PDQ-DELTA-1\n"
# What faiss.write_index_binary starts an IndexBinaryIDMap2 with (FaissPdqIndex's files).
LEGACY_FAISS_MAGIC = b"IBM2"
# Entries appended since the last table build that are scanned one by one; past this the
# tables are rebuilt at the next search (a scan of 8,192 hashes costs ~20 us a query).
TAIL_LIMIT = 8192
# Queries answered by scanning (no tables yet, or a tail past TAIL_LIMIT) before the
# tables are built: ski rental, a build costs about as much as this many scanned queries.
SCANS_BEFORE_BUILD = 512
# Below this many entries a plain scan is as fast as probing and needs no tables.
MIN_ENTRIES_FOR_TABLES = 4096
# Banks smaller than this, searched without tables, are scanned by numpy (numba, and its
# seconds of start-up, are loaded only for banks where the compiled loops pay).
NUMPY_SCAN_BELOW = 65536
# Bigger banks too, until this many hash comparisons (~2 s of numpy) have been made in the
# process: one retro-hunt in a `ref add` should not wait seconds for numba to start.
NUMPY_SCAN_WORK = 200_000_000
# Threads one search's queries are split over (the machine's cores, at most 2: a scan
# runs beside crawl workers), and the bank size from which that pays (~1 ms a batch).
SEARCH_THREADS = min(2, os.cpu_count() or 1)
THREADED_ABOVE = 1_000_000
# Chunk widths whose dense offsets table stays <= 256 MB (2^26 x 4 bytes).
MAX_CHUNK_BITS = 26
# The dense offsets tables (4 bytes per possible key) may take this many bytes per entry,
# or 64 MB, whichever is more: wide chunks pay off only once the bank fills them. Past
# 1 GB they may not grow: at 100M entries ten chunks of 25-26 bits would take 2.1 GB
# (21 B an entry) for ~12 % fewer reads than eleven of 23-24 bits in 0.47 GB, and the
# crawl history must fit in 8 GB.
OFFSET_BYTES_PER_ENTRY = 48
OFFSET_BYTES_FLOOR = 64 << 20
OFFSET_BYTES_CAP = 1 << 30
# A probed key or a candidate is a random memory read; a scanned hash is a sequential one.
RANDOM_READ_COST = 8


@lru_cache(maxsize=64)
def flip_masks(width: int, flips: int) -> np.ndarray:
    """Every `width`-bit mask with at most `flips` bits set, fewest bits first."""
    masks = [
        sum(1 << bit for bit in bits)
        for count in range(flips + 1)
        for bits in combinations(range(width), count)
    ]
    return np.asarray(masks, dtype=np.uint64)


def chunk_widths(chunks: int) -> list[int]:
    """`chunks` widths as even as possible, adding up to 256 bits."""
    narrow, wider = divmod(PDQ_BITS, chunks)
    return [narrow + 1] * wider + [narrow] * (chunks - wider)


def flips_for(radius: int, chunks: int) -> int:
    """The flips every chunk would need were they all probed alike (pigeonhole)."""
    return math.ceil((radius + 1) / chunks) - 1


def _probe_reads(width: int, flips: int, entries: int) -> float:
    """Random reads of one chunk's probes: each key's offsets, the rows of each non-empty
    bucket, each candidate's hash (uniform hashes)."""
    probes = sum(math.comb(width, i) for i in range(flips + 1))
    per_bucket = entries / 2**width
    return probes * (1 + -math.expm1(-per_bucket) + per_bucket)


@lru_cache(maxsize=1024)
def chunk_flips(entries: int, chunks: int, radius: int) -> tuple[int, ...]:
    """How many bits each chunk is probed within. Exact whenever the chunks' flips plus one
    add up to more than `radius`: a hash within `radius` bits differs by more than f_c bits
    in every chunk c only if it differs by at least sum(f_c + 1) bits in all. Evenly spread
    flips usually overshoot (11 chunks of 2 flips cover 32 + 1 bits); the spare pigeons
    are taken off where that saves the most reads (-1: the chunk is not probed at all)."""
    widths = chunk_widths(chunks)
    flips = [flips_for(radius, chunks)] * chunks
    spare = sum(f + 1 for f in flips) - (radius + 1)
    for _ in range(spare):
        saving, cheapest = max(
            (_probe_reads(w, f, entries) - _probe_reads(w, f - 1, entries), c)
            for c, (w, f) in enumerate(zip(widths, flips, strict=True))
            if f >= 0
        )
        flips[cheapest] -= 1
    return tuple(flips)


def offsets_of(sizes: Sequence[int]) -> np.ndarray:
    """Where each of these consecutive sizes starts (chunks' bit offsets, tables' bases)."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def probing_pays(entries: int, chunks: int, radius: int) -> bool:
    """Would chunk tables over `entries` rows answer this radius faster than a scan? (Not
    at the image matcher's 90 bits.)"""
    return RANDOM_READ_COST * probe_cost(entries, chunks, radius) < entries


def probe_cost(entries: int, chunks: int, radius: int) -> float:
    """Random reads per query: table keys probed plus candidates expected (uniform hashes)."""
    flips = chunk_flips(entries, chunks, radius)
    return sum(
        _probe_reads(w, f, entries) for w, f in zip(chunk_widths(chunks), flips, strict=True)
    )


@lru_cache(maxsize=256)
def best_chunk_count(entries: int, radius: int = 31) -> int:
    """The chunk count with the fewest random reads per query for a bank of this size."""
    budget = min(OFFSET_BYTES_CAP, max(OFFSET_BYTES_FLOOR, entries * OFFSET_BYTES_PER_ENTRY))
    usable = [
        m
        for m in range(8, 33)
        if max(chunk_widths(m)) <= MAX_CHUNK_BITS and sum(4 << w for w in chunk_widths(m)) <= budget
    ]
    return min(usable, key=lambda m: probe_cost(entries, m, radius))


# A compiled search over some queries, writing (query, row, distance) into the buffers.
KernelRun = Callable[[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]], int]


def _collect(run: KernelRun, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, row, distance) arrays of one kernel run, retried with room for every hit."""
    capacity = 64 + 16 * len(words)
    while True:
        out = tuple(np.empty(capacity, dtype=np.int64) for _ in range(3))
        found = run(words, out)  # type: ignore[arg-type]
        if found <= capacity:
            return out[0][:found], out[1][:found], out[2][:found]
        capacity = found


@lru_cache(maxsize=4)
def _thread_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="pdq-search")


def run_split(
    run: KernelRun, query_words: np.ndarray, threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, row, distance) of a kernel run over every query. The compiled loops release
    the GIL: a batch (an image's 8 dihedral hashes) is split over `threads`."""
    parts = min(threads, len(query_words))
    if parts <= 1:
        return _collect(run, query_words)
    bounds = np.linspace(0, len(query_words), parts + 1).astype(int)
    pieces = list(
        _thread_pool(parts).map(
            lambda i: _collect(run, query_words[bounds[i] : bounds[i + 1]]), range(parts)
        )
    )
    return (
        np.concatenate([q + bounds[i] for i, (q, _, _) in enumerate(pieces)]),
        np.concatenate([rows for _, rows, _ in pieces]),
        np.concatenate([d for _, _, d in pieces]),
    )


def hits_per_query(
    queries: int, out_query: np.ndarray, entry_ids: np.ndarray, distances: np.ndarray
) -> list[list[PdqHit]]:
    """A kernel's flat (query, entry id, distance) arrays as each query's sorted hits."""
    results: list[list[PdqHit]] = [[] for _ in range(queries)]
    for q, entry_id, distance in zip(
        out_query.tolist(), entry_ids.tolist(), distances.tolist(), strict=True
    ):
        results[q].append(PdqHit(distance, entry_id))
    for hits in results:
        hits.sort()
    return results


def table_search(
    heads: np.ndarray,
    codes: np.ndarray,
    alive: np.ndarray,
    radius: int,
    chunk_offsets: np.ndarray,
    chunk_widths: np.ndarray,
    entries: int,
    starts: np.ndarray,
    start_bases: np.ndarray,
    rows: np.ndarray,
    tail: tuple[int, int],
) -> KernelRun:
    """The compiled probe of chunk tables built over `entries` rows (plus an exhaustive
    look at the rows tail[0]..tail[1]-1 added since), as a run for `run_split`."""
    from ansim.indexer import mih_kernels

    flips = chunk_flips(entries, len(chunk_widths), radius)
    masks, mask_starts = probe_masks(chunk_widths, flips)
    flips_array = np.asarray(flips, dtype=np.int64)

    def run(words: np.ndarray, out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
        return mih_kernels.search_tables(
            heads,
            codes,
            alive,
            words,
            radius,
            chunk_offsets,
            chunk_widths,
            flips_array,
            masks,
            mask_starts,
            starts,
            start_bases,
            rows,
            tail[0],
            tail[1],
            *out,
        )

    return run


def scan_search(codes: np.ndarray, alive: np.ndarray, radius: int) -> KernelRun:
    """The compiled exhaustive comparison of every row of `codes`, as a run for `run_split`."""
    from ansim.indexer import mih_kernels

    def run(words: np.ndarray, out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
        return mih_kernels.scan_rows(codes, alive, words, radius, len(codes), *out)

    return run


def probe_masks(widths: np.ndarray, flips: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every chunk's flip masks end to end, and where each chunk's start (the kernel's
    `masks` and `mask_starts`)."""
    mask_sets = [flip_masks(int(w), f) for w, f in zip(widths, flips, strict=True)]
    starts = np.concatenate([[0], np.cumsum([len(m) for m in mask_sets])]).astype(np.int64)
    return np.concatenate(mask_sets), starts


class MihPdqIndex(CodeSearchingPdqIndex):
    """Exact radius search over PDQ hashes by multi-index hashing (see the module doc).

    `chunks` fixes the number of tables (tests use it to force probing on small banks);
    by default it is chosen from the bank's size each time the tables are built.
    """

    def __init__(
        self,
        chunks: int | None = None,
        tail_limit: int = TAIL_LIMIT,
        min_entries_for_tables: int = MIN_ENTRIES_FOR_TABLES,
        scans_before_build: int = SCANS_BEFORE_BUILD,
        numpy_scan_below: int = NUMPY_SCAN_BELOW,
        numpy_scan_work: int = NUMPY_SCAN_WORK,
        threads: int = SEARCH_THREADS,
    ) -> None:
        if chunks is not None and not (
            PDQ_BITS // 32 <= chunks <= PDQ_BITS and max(chunk_widths(chunks)) <= MAX_CHUNK_BITS
        ):
            raise ValueError(f"chunks must give widths of at most {MAX_CHUNK_BITS} bits")
        self._fixed_chunks = chunks
        self._tail_limit = tail_limit
        self._min_entries_for_tables = min_entries_for_tables
        self._scans_before_build = scans_before_build
        self._stale_queries = 0  # queries answered past an over-long tail since the last build
        self._numpy_work = 0  # comparisons scanned by numpy before numba was loaded
        self._numpy_scan_below = numpy_scan_below
        self._threads = max(1, threads)
        self._numpy_scan_work = numpy_scan_work
        self._ids = np.zeros(1024, dtype=np.int64)
        self._codes = np.zeros((1024, WORDS), dtype=np.uint64)
        self._alive = np.zeros(1024, dtype=np.bool_)
        self._count = 0  # rows used, alive or not
        self._live = 0
        # While a write records its changes (`record_changes`): the first row it added and
        # the ids it removed. Rows are not compacted meanwhile, so the added ones stay put.
        self._recording_from: int | None = None
        self._removed_log: list[np.ndarray] = []
        self._clear_tables()

    def _clear_tables(self) -> None:
        self._indexed = 0  # rows 0.._indexed-1 are in the tables
        self._chunk_offsets = np.zeros(0, dtype=np.int64)
        self._chunk_widths = np.zeros(0, dtype=np.int64)
        self._starts = np.zeros(1, dtype=np.uint32)
        self._start_bases = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros((0, 0), dtype=np.uint32)

    # -- entries -------------------------------------------------------------------------

    def add(self, entry_ids: list[int], pdq_hexes: list[str]) -> None:
        if len(entry_ids) != len(pdq_hexes):
            raise ValueError(f"{len(entry_ids)} ids for {len(pdq_hexes)} hashes")
        if not entry_ids:
            return
        # One C call for the whole batch (a bulk import hands over a million at a time);
        # lengths are checked first so that no hash can borrow digits from the next.
        if all(len(h) == 2 * PDQ_BYTES for h in pdq_hexes):
            try:
                raw = bytes.fromhex("".join(pdq_hexes))
            except ValueError:
                raw = b""
            if len(raw) == PDQ_BYTES * len(pdq_hexes):
                codes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, PDQ_BYTES)
                self.add_codes(np.asarray(entry_ids, dtype=np.int64), codes)
                return
        # Anything odd goes through the strict per-hash parser, which names the bad one.
        self.add_codes(np.asarray(entry_ids, dtype=np.int64), hashes_to_array(pdq_hexes))

    def add_codes(self, entry_ids: np.ndarray, codes: np.ndarray) -> None:
        """Bulk add: ids (n,) and raw hashes (n, 32) uint8, as read from a file or a store."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        if len(entry_ids) != len(codes):
            raise ValueError(f"{len(entry_ids)} ids for {len(codes)} hashes")
        added = len(codes)
        self._reserve(self._count + added)
        end = self._count + added
        self._ids[self._count : end] = entry_ids
        self._codes[self._count : end] = codes.view("<u8").reshape(-1, WORDS)
        self._alive[self._count : end] = True
        self._count, self._live = end, self._live + added

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._ids):
            return
        capacity = max(needed, len(self._ids) * 3 // 2)
        for name in ("_ids", "_codes", "_alive"):
            old = getattr(self, name)
            grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[: self._count] = old[: self._count]
            setattr(self, name, grown)

    def remove(self, entry_ids: list[int]) -> int:
        if not len(entry_ids) or not self._live:
            return 0
        hit = np.isin(self._ids[: self._count], np.asarray(entry_ids, dtype=np.int64))
        hit &= self._alive[: self._count]
        removed = int(hit.sum())
        self._alive[: self._count][hit] = False
        self._live -= removed
        if self._recording_from is not None:
            self._removed_log.append(self._ids[: self._count][hit])
        else:
            self._compact_if_sparse()
        return removed

    def _compact_if_sparse(self) -> None:
        if self._count - self._live > max(self._tail_limit, self._live // 4):
            self._compact()

    def _compact(self) -> None:
        """Drop tombstoned rows; the tables are rebuilt at the next search."""
        keep = np.flatnonzero(self._alive[: self._count])
        self._ids = self._ids[keep]
        self._codes = self._codes[keep]
        self._alive = np.ones(len(keep), dtype=np.bool_)
        self._count = self._live = len(keep)
        self._clear_tables()

    def __len__(self) -> int:
        return self._live

    # -- tables --------------------------------------------------------------------------

    def _tail_too_long(self) -> bool:
        return self._count - self._indexed > self._tail_limit

    def _probing_pays(self, radius: int) -> bool:
        """Would tables over every row answer this radius faster than a scan? (Searches
        where they would not never call for a build.)"""
        chunks = self._fixed_chunks or best_chunk_count(self._count)
        return probing_pays(self._count, chunks, radius)

    def _tables_due(self) -> bool:
        """Tables are (re)built once enough queries have paid for scanning without them:
        a process that opens the bank for one image's retro-hunt scans (8 queries, ~13 ms
        at 1M) instead of building for seconds; a scan of many images builds early on."""
        if self._count < self._min_entries_for_tables or not self._tail_too_long():
            return False
        return self._stale_queries >= self._scans_before_build

    def build(self) -> None:
        """(Re)build the chunk tables over every row now held."""
        if self._count - self._live:
            self._compact()
        chunks = self._fixed_chunks or best_chunk_count(self._count)
        widths = chunk_widths(chunks)
        offsets = offsets_of(widths)
        from ansim.indexer import mih_kernels

        codes = self._codes[: self._count]
        starts_parts, rows = [], np.empty((chunks, self._count), dtype=np.uint32)
        for c, (offset, width) in enumerate(zip(offsets, widths, strict=True)):
            starts, rows[c] = mih_kernels.build_table(codes, self._count, offset, width)
            starts_parts.append(starts)
        self._chunk_offsets = offsets
        self._chunk_widths = np.asarray(widths, dtype=np.int64)
        self._start_bases = offsets_of([len(s) for s in starts_parts])
        self._starts = np.concatenate(starts_parts)
        self._rows = rows
        self._indexed = self._count
        self._stale_queries = 0

    @property
    def entries_in_tables(self) -> int:
        """Rows covered by the chunk tables (0: none built; the rest is scanned)."""
        return self._indexed

    def memory_bytes(self) -> int:
        """Bytes held for the entries and tables (capacity slack not counted)."""
        per_row = self._ids.itemsize + self._codes.itemsize * WORDS + 1
        return self._count * per_row + self._starts.nbytes + self._rows.nbytes

    # -- search --------------------------------------------------------------------------

    def search_codes(self, queries: np.ndarray, max_distance: int) -> list[list[PdqHit]]:
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, PDQ_BYTES)
        query_words = queries.view("<u8").reshape(-1, WORDS)
        if max_distance < 0 or not self._live:
            return [[] for _ in range(len(queries))]
        if self._tail_too_long() and self._probing_pays(max_distance):
            self._stale_queries += len(queries)
            if self._tables_due():
                self.build()
        use_tables = self._indexed > 0 and probing_pays(
            self._indexed, len(self._chunk_widths), max_distance
        )
        if not use_tables:
            work = self._count * len(queries)
            kernels_loaded = "ansim.indexer.mih_kernels" in sys.modules
            if self._count < self._numpy_scan_below or (
                not kernels_loaded and self._numpy_work + work <= self._numpy_scan_work
            ):
                self._numpy_work += work
                return self._numpy_scan(query_words, max_distance)
        if use_tables:
            run = table_search(
                self._codes,
                self._codes,
                self._alive,
                max_distance,
                self._chunk_offsets,
                self._chunk_widths,
                self._indexed,
                self._starts,
                self._start_bases,
                self._rows,
                tail=(self._indexed, self._count),
            )
        else:
            run = scan_search(self._codes[: self._count], self._alive[: self._count], max_distance)
        out_query, out_row, out_distance = run_split(
            run, query_words, self._threads if self._count >= THREADED_ABOVE else 1
        )
        return hits_per_query(len(queries), out_query, self._ids[out_row], out_distance)

    def _numpy_scan(self, query_words: np.ndarray, max_distance: int) -> list[list[PdqHit]]:
        codes, alive = self._codes[: self._count], self._alive[: self._count]
        ids = self._ids[: self._count]
        results = []
        for query in query_words:
            distances = np.bitwise_count(codes ^ query).sum(axis=1, dtype=np.int64)
            rows = np.flatnonzero((distances <= max_distance) & alive)
            results.append(sorted(map(PdqHit, distances[rows].tolist(), ids[rows].tolist())))
        return results

    # -- files ---------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Ids and hashes of the live entries; the tables are rebuilt on load."""
        live = self._alive[: self._count]
        with open(path, "wb") as out:
            out.write(FILE_MAGIC)
            out.write(np.int64(self._live).tobytes())
            out.write(self._ids[: self._count][live].tobytes())
            out.write(self._codes[: self._count][live].tobytes())

    def record_changes(self) -> None:
        self._recording_from = self._count
        self._removed_log = []

    def recorded_changes(self) -> int:
        if self._recording_from is None:
            return 0
        return self._count - self._recording_from + sum(len(r) for r in self._removed_log)

    def stop_recording(self) -> None:
        self._recording_from, self._removed_log = None, []
        self._compact_if_sparse()

    def save_changes(self, path: Path) -> None:
        """The recorded write as a delta segment: 40 bytes an added entry, 8 a removed one."""
        write_changes(path, *self.take_recorded())

    def take_recorded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(added ids, their hashes as (n, 4) words, removed ids) of the recorded write;
        recording stops."""
        if self._recording_from is None:
            raise RuntimeError("no changes are being recorded")
        added = slice(self._recording_from, self._count)
        removed = np.concatenate([np.zeros(0, dtype=np.int64), *self._removed_log])
        taken = self._ids[added].copy(), self._codes[added].copy(), removed
        self.stop_recording()
        return taken

    def live_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The live entries' (ids, hashes as (n, 4) words), in row order."""
        live = self._alive[: self._count]
        yield self._ids[: self._count][live], self._codes[: self._count][live]

    def apply_changes(self, path: Path) -> None:
        """Apply a segment `save_changes` wrote (adds first: a write may add then remove)."""
        ids, codes, gone = read_changes(path)
        self.add_codes(ids, codes.view(np.uint8).reshape(len(ids), PDQ_BYTES))
        self.remove(gone)

    @staticmethod
    def merge_changes(sources: list[Path], target: Path) -> int:
        """Write the segments `sources` (in order) as one; returns its entries + removals.
        An entry added and removed within them leaves no trace."""
        parts = [read_changes(path) for path in sources]
        ids = np.concatenate([np.zeros(0, np.int64), *(p[0] for p in parts)])
        codes = np.concatenate([np.zeros((0, WORDS), np.uint64), *(p[1] for p in parts)])
        gone = np.concatenate([np.zeros(0, np.int64), *(p[2] for p in parts)])
        kept = ~np.isin(ids, gone)
        gone_before = gone[~np.isin(gone, ids)]  # removals of entries older than the segments
        write_changes(target, ids[kept], codes[kept], gone_before)
        return int(kept.sum()) + len(gone_before)

    @classmethod
    def load(cls, path: Path) -> MihPdqIndex:
        with open(path, "rb") as source:
            magic = source.read(len(FILE_MAGIC))
            if magic.startswith(LEGACY_FAISS_MAGIC):
                return cls._from_faiss_file(path)
            if magic != FILE_MAGIC:
                raise ValueError(f"{path} is not a PDQ multi-index-hashing file")
            count = int(np.frombuffer(source.read(8), dtype=np.int64)[0])
            ids = np.fromfile(source, dtype=np.int64, count=count)
            codes = np.fromfile(source, dtype=np.uint64, count=count * WORDS)
        if len(ids) != count or len(codes) != count * WORDS:
            raise ValueError(f"{path} is truncated")
        return cls._of_arrays(ids, codes.reshape(count, WORDS))

    @classmethod
    def _of_arrays(cls, ids: np.ndarray, words: np.ndarray) -> MihPdqIndex:
        index = cls()
        index._ids, index._codes = ids, words
        index._alive = np.ones(len(ids), dtype=np.bool_)
        index._count = index._live = len(ids)
        return index

    @classmethod
    def _from_faiss_file(cls, path: Path) -> MihPdqIndex:
        """A bank written by the earlier exhaustive FAISS index (IndexBinaryIDMap2 over a
        flat index) opens as it was: its ids and hashes are read out of it."""
        legacy = faiss.read_index_binary(str(path))
        flat = faiss.downcast_IndexBinary(legacy.index)
        ids = faiss.vector_to_array(legacy.id_map).astype(np.int64)
        codes = faiss.vector_to_array(flat.xb).reshape(-1, PDQ_BYTES)
        return cls._of_arrays(ids, np.ascontiguousarray(codes).view("<u8").copy())


def write_changes(path: Path, ids: np.ndarray, words: np.ndarray, removed: np.ndarray) -> None:
    with open(path, "wb") as out:
        out.write(CHANGES_MAGIC)
        out.write(np.asarray([len(ids), len(removed)], np.int64).tobytes())
        out.write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        out.write(np.ascontiguousarray(words, dtype=np.uint64).tobytes())
        out.write(np.ascontiguousarray(removed, dtype=np.int64).tobytes())


def read_changes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(added ids, their hashes as (n, 4) words, removed ids) of a delta segment."""
    with open(path, "rb") as source:
        if source.read(len(CHANGES_MAGIC)) != CHANGES_MAGIC:
            raise ValueError(f"{path} is not a PDQ delta segment")
        header = np.frombuffer(source.read(16), dtype=np.int64)
        if len(header) != 2:
            raise ValueError(f"{path} is truncated")
        added, removed = int(header[0]), int(header[1])
        ids = np.fromfile(source, dtype=np.int64, count=added)
        codes = np.fromfile(source, dtype=np.uint64, count=added * WORDS)
        gone = np.fromfile(source, dtype=np.int64, count=removed)
    if len(ids) != added or len(codes) != added * WORDS or len(gone) != removed:
        raise ValueError(f"{path} is truncated")
    return ids, codes.reshape(added, WORDS), gone
