"""The compiled loops of the multi-index-hashing PDQ index (numba).

Kept apart so that a process whose banks are small never imports numba: importing it and
starting its compiler costs seconds, even when the compiled code comes from the cache.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_SIXTY_FOUR = np.uint64(64)
_ONE = np.uint64(1)


@intrinsic
def _popcount(typingctx, value):  # type: ignore[no-untyped-def]
    """The CPU's popcount instruction (numba has none of its own)."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        word = ir.IntType(64)
        count = builder.module.declare_intrinsic("llvm.ctpop", [word])
        return builder.call(count, [args[0]])

    return sig, codegen


@intrinsic
def _prefetch(typingctx, array, index):  # type: ignore[no-untyped-def]
    """Ask for the cache line of `array[index]` (of a 2-d array: of its row) without
    waiting for it: a query's random reads are issued together, not one after another."""
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        indices = [args[1]] + [zero] * (array_type.ndim - 1)
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, indices, wraparound=False
        )
        i32, byte_pointer = ir.IntType(32), ir.IntType(8).as_pointer()
        signature_ = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        fetch = cgutils.get_or_insert_function(builder.module, signature_, "llvm.prefetch.p0")
        address = builder.bitcast(pointer, byte_pointer)
        # a read, kept in every cache level, of data
        builder.call(
            fetch, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        )
        return context.get_dummy_value()

    return sig, codegen


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
    heads: np.ndarray,
    codes: np.ndarray,
    alive: np.ndarray,
    queries: np.ndarray,
    radius: np.int64,
    chunk_offsets: np.ndarray,
    chunk_widths: np.ndarray,
    chunk_flips: np.ndarray,
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
    buffers' length, in which case the caller retries with bigger ones). Chunk c is probed
    at every key within chunk_flips[c] bits of the query's chunk.

    A candidate is first compared on its first 128 bits, `heads[row, 0:2]` (`heads` may be
    `codes` itself, or a separate copy of those two words): a random pair is within 31
    bits there about once in 10^8, so the full hash, which may sit in a memory-mapped file
    that is mostly not resident, is read only for the true hits and a rare near miss."""
    found = 0
    capacity = out_row.shape[0]
    chunks = chunk_offsets.shape[0]
    query_chunks = np.empty(chunks, dtype=np.uint64)
    # Per query, in phases: every probed key's offsets, then every bucket's rows, then
    # every candidate's hash are first prefetched, all together, and only then read: the
    # reads are random (a bank's tables are far bigger than the caches), and issued one
    # after another each would wait a full memory latency. Tombstones are checked only
    # for hits (they are rare).
    probes = mask_starts[chunks] if chunks else 0
    keys = np.empty(probes, dtype=np.int64)
    bucket_from = np.empty(probes, dtype=np.int64)
    bucket_to = np.empty(probes, dtype=np.int64)
    bucket_chunk = np.empty(probes, dtype=np.int64)
    candidates = np.empty(1024, dtype=np.int64)
    candidate_chunk = np.empty(1024, dtype=np.int64)
    for q in range(queries.shape[0]):
        query = queries[q]
        for c in range(chunks):
            query_chunks[c] = _chunk(query, chunk_offsets[c], chunk_widths[c])
            base = start_bases[c]
            for m in range(mask_starts[c], mask_starts[c + 1]):
                key = base + np.int64(query_chunks[c] ^ masks[m])
                keys[m] = key
                bucket_chunk[m] = c
                _prefetch(starts, key)
        total = 0
        for m in range(probes):
            bucket_from[m] = starts[keys[m]]
            bucket_to[m] = starts[keys[m] + 1]
            if bucket_to[m] > bucket_from[m]:
                _prefetch(rows[bucket_chunk[m]], bucket_from[m])
            total += bucket_to[m] - bucket_from[m]
        if total > candidates.shape[0]:
            candidates = np.empty(total, dtype=np.int64)
            candidate_chunk = np.empty(total, dtype=np.int64)
        j = 0
        for m in range(probes):
            c = bucket_chunk[m]
            for k in range(bucket_from[m], bucket_to[m]):
                row = np.int64(rows[c, k])
                _prefetch(heads, row)
                candidates[j] = row
                candidate_chunk[j] = c
                j += 1
        for j in range(total):
            row = candidates[j]
            head_distance = _popcount(heads[row, 0] ^ query[0]) + _popcount(
                heads[row, 1] ^ query[1]
            )
            if head_distance > radius:
                continue
            distance = (
                head_distance
                + _popcount(codes[row, 2] ^ query[2])
                + _popcount(codes[row, 3] ^ query[3])
            )
            if distance > radius or not alive[row]:
                continue
            # Kept only where first found: in no earlier chunk within its flips.
            c = candidate_chunk[j]
            earlier = False
            for e in range(c):
                differing = _chunk(codes[row], chunk_offsets[e], chunk_widths[e])
                if _popcount(differing ^ query_chunks[e]) <= chunk_flips[e]:
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
