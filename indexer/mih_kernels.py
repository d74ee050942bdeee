"""The compiled loops of the multi-index-hashing PDQ index (numba).

Kept apart so that a process whose banks are small never imports numba: importing it and
starting its compiler costs seconds, even when the compiled code comes from the cache.
"""

from __future__ import annotations

import numba
import numpy as np

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_FOUR = np.uint64(4)
_FIFTY_SIX = np.uint64(56)
_SIXTY_FOUR = np.uint64(64)


@numba.njit(inline="always", cache=True)
def _popcount(x: np.uint64) -> np.int64:
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> _TWO) & _M2)
    x = (x + (x >> _FOUR)) & _M4
    return np.int64((x * _H01) >> _FIFTY_SIX)


@numba.njit(inline="always", cache=True)
def _chunk(words: np.ndarray, offset: np.int64, width: np.int64) -> np.uint64:
    word = offset // 64
    shift = np.uint64(offset % 64)
    value = words[word] >> shift
    if (offset % 64) + width > 64:
        value |= words[word + 1] << (_SIXTY_FOUR - shift)
    return value & ((_ONE << np.uint64(width)) - _ONE)


@numba.njit(cache=True)
def build_table(
    codes: np.ndarray, count: np.int64, offset: np.int64, width: np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of rows 0..count-1 by one chunk: (starts[2^width + 1], rows)."""
    keys = np.empty(count, dtype=np.uint32)
    starts = np.zeros((1 << width) + 1, dtype=np.uint32)
    for row in range(count):
        key = np.int64(_chunk(codes[row], offset, width))
        keys[row] = key
        starts[key + 1] += 1
    for key in range(1 << width):
        starts[key + 1] += starts[key]
    fill = starts[:-1].copy()
    rows = np.empty(count, dtype=np.uint32)
    for row in range(count):
        key = np.int64(keys[row])
        rows[fill[key]] = row
        fill[key] += 1
    return starts, rows


@numba.njit(cache=True)
def _distance(codes: np.ndarray, row: np.int64, query: np.ndarray) -> np.int64:
    return (
        _popcount(codes[row, 0] ^ query[0])
        + _popcount(codes[row, 1] ^ query[1])
        + _popcount(codes[row, 2] ^ query[2])
        + _popcount(codes[row, 3] ^ query[3])
    )


@numba.njit(cache=True, nogil=True)
def search_tables(
    codes: np.ndarray,
    alive: np.ndarray,
    queries: np.ndarray,
    radius: np.int64,
    chunk_offsets: np.ndarray,
    chunk_widths: np.ndarray,
    flips: np.int64,
    masks: np.ndarray,
    mask_starts: np.ndarray,
    starts: np.ndarray,
    start_bases: np.ndarray,
    rows: np.ndarray,
    tail_from: np.int64,
    tail_to: np.int64,
    out_query: np.ndarray,
    out_row: np.ndarray,
    out_distance: np.ndarray,
) -> np.int64:
    """Every (query, row, distance) within `radius`; returns how many (may exceed the
    buffers' length, in which case the caller retries with bigger ones)."""
    found = 0
    capacity = out_row.shape[0]
    chunks = chunk_offsets.shape[0]
    query_chunks = np.empty(chunks, dtype=np.uint64)
    # Per query, in three passes whose memory reads do not wait on each other (so the CPU
    # keeps many cache misses in flight): the probed buckets' bounds, their rows, then
    # each candidate's distance. Tombstones are checked only for hits (they are rare).
    probes = mask_starts[chunks] if chunks else 0
    bucket_from = np.empty(probes, dtype=np.int64)
    bucket_to = np.empty(probes, dtype=np.int64)
    bucket_chunk = np.empty(probes, dtype=np.int64)
    candidates = np.empty(1024, dtype=np.int64)
    candidate_chunk = np.empty(1024, dtype=np.int64)
    for q in range(queries.shape[0]):
        query = queries[q]
        for c in range(chunks):
            query_chunks[c] = _chunk(query, chunk_offsets[c], chunk_widths[c])
        total = 0
        for c in range(chunks):
            base = start_bases[c]
            for m in range(mask_starts[c], mask_starts[c + 1]):
                key = base + np.int64(query_chunks[c] ^ masks[m])
                bucket_from[m] = starts[key]
                bucket_to[m] = starts[key + 1]
                bucket_chunk[m] = c
                total += bucket_to[m] - bucket_from[m]
        if total > candidates.shape[0]:
            candidates = np.empty(total, dtype=np.int64)
            candidate_chunk = np.empty(total, dtype=np.int64)
        j = 0
        for m in range(probes):
            c = bucket_chunk[m]
            for k in range(bucket_from[m], bucket_to[m]):
                candidates[j] = rows[c, k]
                candidate_chunk[j] = c
                j += 1
        for j in range(total):
            row = candidates[j]
            distance = _distance(codes, row, query)
            if distance > radius or not alive[row]:
                continue
            # Kept only where first found: in no earlier chunk within `flips` bits.
            c = candidate_chunk[j]
            earlier = False
            for e in range(c):
                differing = _chunk(codes[row], chunk_offsets[e], chunk_widths[e])
                if _popcount(differing ^ query_chunks[e]) <= flips:
                    earlier = True
                    break
            if earlier:
                continue
            if found < capacity:
                out_query[found] = q
                out_row[found] = row
                out_distance[found] = distance
            found += 1
        for row in range(tail_from, tail_to):
            if alive[row]:
                distance = _distance(codes, row, query)
                if distance <= radius:
                    if found < capacity:
                        out_query[found] = q
                        out_row[found] = row
                        out_distance[found] = distance
                    found += 1
    return found


@numba.njit(cache=True, nogil=True)
def scan_rows(
    codes: np.ndarray,
    alive: np.ndarray,
    queries: np.ndarray,
    radius: np.int64,
    row_to: np.int64,
    out_query: np.ndarray,
    out_row: np.ndarray,
    out_distance: np.ndarray,
) -> np.int64:
    """The exhaustive plan: each stored hash is read once and compared with every query
    (a dihedral batch of 8 reads the bank once, not 8 times). Returns as search_tables."""
    found = 0
    capacity = out_row.shape[0]
    for row in range(row_to):
        if not alive[row]:
            continue
        for q in range(queries.shape[0]):
            distance = _distance(codes, row, queries[q])
            if distance <= radius:
                if found < capacity:
                    out_query[found] = q
                    out_row[found] = row
                    out_distance[found] = distance
                found += 1
    return found
