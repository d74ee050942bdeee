"""A PDQ multi-index-hashing bank in one file, its tables built once and mapped.

`MihPdqIndex` keeps its hashes and chunk tables in memory and rebuilds the tables after
every load: at 100M entries that is ~100 s of CPU and ~10 GB, more than the crawl
history may take. A table file holds everything a search reads, laid out to be mapped
rather than read:

    header | ids (int64) | heads (the first 128 bits of each hash) | hashes (256 bits)
           | offsets of every chunk's keys (uint32) | every chunk's rows (uint32)

Opening maps the file and reads in the heads and the tables, in file order (a lookup
reads them at random: faulting them in one page at a time would cost minutes at 100M on
a cold cache). A search touches the offsets and rows of the keys it probes and each
candidate's head; the full hash and the id of a candidate are read only when its head is
within the radius (about once in 10^8 for a random pair at 31 bits). So what stays
resident is the heads and the tables, ~66 bytes an entry at 100M, while ids and full
hashes (40 bytes an entry) stay on disk; a wide search (the robust decision's 90 bits)
scans the hashes block by block, dropping each block's pages once read.

Rows are sorted by id when the file is written (they usually arrive in order), so a
removal finds its rows by binary search. Removed rows are only marked (in memory): the
file never changes once written, and the next compaction writes a new one.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from ansim.detector.pdq import PDQ_BYTES
from ansim.indexer.mih_pdq_index import (
    WORDS,
    best_chunk_count,
    chunk_widths,
    hits_per_query,
    offsets_of,
    probing_pays,
    run_split,
    scan_search,
    table_search,
)
from ansim.indexer.pdq_index import PdqHit
from ansim.indexer.persisted import fsync_path

TABLE_FILE_MAGIC = b"ANSIM-PDQ-MIH-TABLES-1\n"
HEAD_WORDS = 2
# Sections start at multiples of this (whole pages: mapped arrays stay aligned).
ALIGN = 4096
# The header: magic, then int64 fields (entries, chunks, ids sorted) and 32 chunk widths.
HEADER_FIELDS = 3
MAX_CHUNKS = 32
HEADER_BYTES = len(TABLE_FILE_MAGIC) + 8 * (HEADER_FIELDS + MAX_CHUNKS)
# Entries written per batch while filling the file (bounded memory while writing).
WRITE_BATCH = 1 << 20
# Entries a wide search scans between dropping the pages it has read (64 MB of hashes; a
# multiple of 128, so that every block starts on a page).
SCAN_BLOCK = 1 << 21


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


class Layout:
    """Where each section of a table file of `entries` rows and these chunk widths lies."""

    def __init__(self, entries: int, widths: list[int]) -> None:
        self.entries = entries
        self.widths = widths
        self.chunk_offsets = offsets_of(widths)
        self.key_counts = [(1 << w) + 1 for w in widths]
        self.ids_at = _aligned(HEADER_BYTES)
        self.heads_at = _aligned(self.ids_at + 8 * entries)
        self.codes_at = _aligned(self.heads_at + 8 * HEAD_WORDS * entries)
        self.starts_at = _aligned(self.codes_at + PDQ_BYTES * entries)
        self.rows_at = _aligned(self.starts_at + 4 * sum(self.key_counts))
        self.size = self.rows_at + 4 * len(widths) * entries

    def header(self, ids_sorted: bool) -> bytes:
        fields = [self.entries, len(self.widths), int(ids_sorted)]
        widths = self.widths + [0] * (MAX_CHUNKS - len(self.widths))
        return TABLE_FILE_MAGIC + np.asarray(fields + widths, dtype=np.int64).tobytes()

    @classmethod
    def of_header(cls, raw: bytes) -> tuple[Layout, bool]:
        if raw[: len(TABLE_FILE_MAGIC)] != TABLE_FILE_MAGIC:
            raise ValueError("not a PDQ table file")
        fields = np.frombuffer(raw[len(TABLE_FILE_MAGIC) :], dtype=np.int64)
        entries, chunks, ids_sorted = (int(v) for v in fields[:HEADER_FIELDS])
        if not 0 < chunks <= MAX_CHUNKS or entries < 0:
            raise ValueError("damaged PDQ table file header")
        widths = [int(w) for w in fields[HEADER_FIELDS : HEADER_FIELDS + chunks]]
        return cls(entries, widths), bool(ids_sorted)


def is_table_file(path: Path) -> bool:
    with open(path, "rb") as source:
        return source.read(len(TABLE_FILE_MAGIC)) == TABLE_FILE_MAGIC


def write_table_file(
    path: Path,
    entries: int,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    chunks: int | None = None,
) -> None:
    """Write `entries` rows, given as (ids, hashes as (n, 32) uint8 or (n, 4) uint64)
    batches, with their chunk tables. Memory: one chunk's table at a time (~9 bytes an
    entry) beside the mapped hashes; the caller renames the file into place."""
    if entries <= 0:
        raise ValueError("a table file needs at least one entry")
    widths = chunk_widths(chunks or best_chunk_count(entries))
    layout = Layout(entries, widths)
    try:
        whole = np.memmap(path, dtype=np.uint8, mode="w+", shape=(layout.size,))
        ids, heads, codes, starts_section, rows_section = _sections(whole, layout)
        ids_sorted = _fill_rows(ids, heads, codes, batches)
        from ansim.indexer import mih_kernels

        key_base = 0
        for c, (offset, width) in enumerate(zip(layout.chunk_offsets, widths, strict=True)):
            starts, rows = mih_kernels.build_table(codes, entries, offset, width)
            starts_section[key_base : key_base + len(starts)] = starts
            rows_section[c] = rows
            key_base += len(starts)
            del starts, rows
        whole[:HEADER_BYTES] = np.frombuffer(layout.header(ids_sorted), dtype=np.uint8)
        whole.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        whole = ids = heads = codes = starts_section = rows_section = None  # unmapped
    fsync_path(path)


def _fill_rows(
    ids: np.ndarray,
    heads: np.ndarray,
    codes: np.ndarray,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
) -> bool:
    """Copy the batches into the mapped sections; returns whether ids ascend throughout."""
    filled, ids_sorted, last_id = 0, True, None
    for batch_ids, batch_codes in batches:
        words = np.ascontiguousarray(batch_codes).view("<u8").reshape(-1, WORDS)
        end = filled + len(words)
        if end > len(ids) or len(batch_ids) != len(words):
            raise ValueError("the batches do not hold the entries announced")
        ids[filled:end] = batch_ids
        codes[filled:end] = words
        heads[filled:end] = words[:, :HEAD_WORDS]
        if len(batch_ids):
            ascending = bool(np.all(np.diff(batch_ids) > 0))
            ids_sorted &= ascending and (last_id is None or int(batch_ids[0]) > last_id)
            last_id = int(batch_ids[-1])
        filled = end
    if filled != len(ids):
        raise ValueError(f"{filled} entries written of {len(ids)} announced")
    return ids_sorted


def _sections(
    buffer: mmap.mmap | np.ndarray, layout: Layout
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, heads, hashes, starts, rows) as plain arrays over the mapped file (the
    compiled loops take ndarrays, not numpy's memmap subclass)."""
    n, chunks = layout.entries, len(layout.widths)

    def section(dtype: type, count: int, at: int) -> np.ndarray:
        return np.frombuffer(buffer, dtype, count, at)

    return (
        section(np.int64, n, layout.ids_at),
        section(np.uint64, n * HEAD_WORDS, layout.heads_at).reshape(n, HEAD_WORDS),
        section(np.uint64, n * WORDS, layout.codes_at).reshape(n, WORDS),
        section(np.uint32, sum(layout.key_counts), layout.starts_at),
        section(np.uint32, n * chunks, layout.rows_at).reshape(chunks, n),
    )


class MappedMihTables:
    """A table file opened for searching. The heads and tables (what every lookup reads,
    at random) are read in when it opens, in file order: faulted in page by page by the
    first lookups they would cost a random read each (minutes at 100M on a cold cache).
    Ids and hashes are mapped and read only where a search needs them."""

    def __init__(self, path: Path, threads: int) -> None:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            layout, self.ids_sorted = Layout.of_header(handle.read(HEADER_BYTES))
            if size != layout.size:
                raise ValueError(f"{path} is truncated ({size} of {layout.size} bytes)")

            def mapped(start: int, end: int, hot: bool) -> mmap.mmap:
                flags = mmap.MAP_SHARED | (mmap.MAP_POPULATE if hot else 0)
                section = mmap.mmap(
                    handle.fileno(), end - start, flags, mmap.PROT_READ, offset=start
                )
                if start != layout.codes_at:  # the hashes are scanned in order
                    section.madvise(mmap.MADV_RANDOM)
                return section

            n, chunks = layout.entries, len(layout.widths)
            self._ids_map = mapped(layout.ids_at, layout.ids_at + 8 * n, hot=False)
            self._heads_map = mapped(layout.heads_at, layout.heads_at + 16 * n, hot=True)
            self._codes_map = mapped(layout.codes_at, layout.codes_at + PDQ_BYTES * n, hot=False)
            self._tables_map = mapped(layout.starts_at, layout.size, hot=True)
        self.path = path
        self.layout = layout
        self.ids = np.frombuffer(self._ids_map, np.int64, n)
        self.heads = np.frombuffer(self._heads_map, np.uint64, n * HEAD_WORDS).reshape(
            n, HEAD_WORDS
        )
        self.codes = np.frombuffer(self._codes_map, np.uint64, n * WORDS).reshape(n, WORDS)
        keys = sum(layout.key_counts)
        self._starts = np.frombuffer(self._tables_map, np.uint32, keys)
        rows_at = layout.rows_at - layout.starts_at
        self._rows = np.frombuffer(self._tables_map, np.uint32, n * chunks, rows_at).reshape(
            chunks, n
        )
        self._widths = np.asarray(layout.widths, dtype=np.int64)
        self._start_bases = offsets_of(layout.key_counts)
        self.alive = np.ones(layout.entries, dtype=np.bool_)
        self.live = layout.entries
        self._threads = threads

    def __len__(self) -> int:
        return self.live

    def rows_of(self, entry_ids: np.ndarray) -> np.ndarray:
        """Rows holding these ids (live or not)."""
        if not self.ids_sorted:
            return np.flatnonzero(np.isin(self.ids, entry_ids))
        at = np.searchsorted(self.ids, entry_ids)
        inside = at < len(self.ids)
        at, wanted = at[inside], entry_ids[inside]
        return np.unique(at[self.ids[at] == wanted])

    def remove(self, entry_ids: np.ndarray) -> np.ndarray:
        """Mark these ids removed; returns the ids that were live."""
        rows = self.rows_of(entry_ids)
        rows = rows[self.alive[rows]]
        self.alive[rows] = False
        self.live -= len(rows)
        return self.ids[rows]

    def search_codes(self, query_words: np.ndarray, radius: int) -> list[list[PdqHit]]:
        if not probing_pays(self.layout.entries, len(self._widths), radius):
            return self._scan(query_words, radius)
        run = table_search(
            self.heads,
            self.codes,
            self.alive,
            radius,
            self.layout.chunk_offsets,
            self._widths,
            self.layout.entries,
            self._starts,
            self._start_bases,
            self._rows,
            tail=(0, 0),
        )
        out_query, out_row, out_distance = run_split(run, query_words, self._threads)
        return hits_per_query(len(query_words), out_query, self.ids[out_row], out_distance)

    def _scan(self, query_words: np.ndarray, radius: int) -> list[list[PdqHit]]:
        """Every hash compared, a block at a time; each block's pages are dropped once
        read, so that a scan of the 32 bytes an entry does not push the heads and tables
        out of memory (or out of a machine's budget: they are what lookups need)."""
        found = []
        for start in range(0, self.layout.entries, SCAN_BLOCK):
            end = min(start + SCAN_BLOCK, self.layout.entries)
            run = scan_search(self.codes[start:end], self.alive[start:end], radius)
            out_query, out_row, out_distance = run_split(run, query_words, self._threads)
            found.append((out_query, out_row + start, out_distance))
            self._drop_pages(PDQ_BYTES * start, PDQ_BYTES * (end - start))
        out_query, out_row, out_distance = (
            np.concatenate(part) for part in zip(*found, strict=True)
        )
        return hits_per_query(len(query_words), out_query, self.ids[out_row], out_distance)

    def _drop_pages(self, offset: int, length: int) -> None:
        """Unmap a range of the hashes from this process and drop it from the page cache
        (clean pages: read again from the file when next needed)."""
        self._codes_map.madvise(mmap.MADV_DONTNEED, offset, length)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.posix_fadvise(
                descriptor, self.layout.codes_at + offset, length, os.POSIX_FADV_DONTNEED
            )
        finally:
            os.close(descriptor)

    def live_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The live rows' (ids, hashes as (n, 4) words), a batch at a time, in row order."""
        for start in range(0, self.layout.entries, WRITE_BATCH):
            end = min(start + WRITE_BATCH, self.layout.entries)
            keep = self.alive[start:end]
            yield self.ids[start:end][keep], self.codes[start:end][keep]

    def resident_bytes(self) -> int:
        """Bytes a search keeps resident once warm: heads, offsets, rows, removal marks."""
        return self.heads.nbytes + self._starts.nbytes + self._rows.nbytes + self.alive.nbytes

    def file_bytes(self) -> int:
        return self.layout.size
