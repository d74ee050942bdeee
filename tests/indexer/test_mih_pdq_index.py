"""The multi-index-hashing PDQ index must return exactly what the brute-force twin returns:
planted neighbours at every distance up to the radius and just past it, after removals,
with a tail of entries added since the tables were built, and after a save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.indexer import mih_pdq_index
from ansim.indexer.mih_pdq_index import (
    MihPdqIndex,
    best_chunk_count,
    chunk_flips,
    chunk_widths,
    flip_masks,
    flips_for,
)
from ansim.indexer.pdq_index import BruteForcePdqIndex, FaissPdqIndex

ENTRIES = 12_000


def flipped(code: np.ndarray, rng: np.random.Generator, bits: int) -> np.ndarray:
    out = code.copy()
    for position in rng.choice(256, bits, replace=False):
        out[position // 8] ^= np.uint8(1 << (position % 8))
    return out


@pytest.fixture(scope="module")
def bank() -> tuple[np.ndarray, list[int], np.random.Generator]:
    rng = np.random.default_rng(18)
    codes = rng.integers(0, 256, (ENTRIES, 32), dtype=np.uint8)
    # Clusters of near-identical hashes (a video's frames): one query hits many entries.
    for start in range(0, 600, 30):
        for row in range(start + 1, start + 30):
            codes[row] = flipped(codes[start], rng, int(rng.integers(0, 12)))
    ids = [1000 + 3 * i for i in range(ENTRIES)]
    return codes, ids, rng


def planted_queries(codes: np.ndarray, rng: np.random.Generator) -> list[str]:
    """For rows spread over the bank: copies at 0..31 bits (found) and 32..40 (not)."""
    rows = rng.choice(len(codes), 82, replace=False)
    distances = list(range(0, 41)) * 2
    queries = [flipped(codes[r], rng, d) for r, d in zip(rows, distances, strict=True)]
    queries += list(rng.integers(0, 256, (20, 32), dtype=np.uint8))
    return [q.tobytes().hex() for q in queries]


def hexes(codes: np.ndarray) -> list[str]:
    return [code.tobytes().hex() for code in codes]


@pytest.mark.parametrize("chunks", [16, 13, 12])
def test_probing_finds_exactly_what_brute_force_finds(bank, chunks: int) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    fast = MihPdqIndex(
        chunks=chunks, tail_limit=500, min_entries_for_tables=0, scans_before_build=0
    )
    reference = BruteForcePdqIndex()
    # Most rows in the tables, the last 400 in the scanned tail.
    fast.add(ids[:-400], hexes(codes[:-400]))
    fast.build()
    fast.add(ids[-400:], hexes(codes[-400:]))
    reference.add(ids, hexes(codes))
    queries = planted_queries(codes, rng)
    queries += [codes[0].tobytes().hex(), codes[-1].tobytes().hex()]  # a cluster; the tail
    for radius in (0, 8, 31, 32, 40):
        assert fast.search(queries, radius) == reference.search(queries, radius), radius
    found = fast.search(queries, 31)
    assert sum(map(len, found)) >= 82 + 30  # every planted copy within 31, and the cluster
    assert len(found[-2]) >= 30 and found[-1][0].entry_id == ids[-1]


def test_removal_tombstones_then_compacts_and_rebuilds(bank) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    fast = MihPdqIndex(chunks=16, tail_limit=300, min_entries_for_tables=0, scans_before_build=0)
    reference = BruteForcePdqIndex()
    fast.add(ids, hexes(codes))
    reference.add(ids, hexes(codes))
    queries = planted_queries(codes, rng)
    assert fast.search(queries, 31) == reference.search(queries, 31)
    assert fast.entries_in_tables == ENTRIES
    gone = ids[:40] + ids[5000:5100]
    assert fast.remove(gone + [7]) == 140  # 7 is no entry's id
    assert fast.remove(gone) == 0  # already gone
    reference.remove(gone)
    assert len(fast) == len(reference) == ENTRIES - 140
    assert fast.search(queries, 31) == reference.search(queries, 31)
    # Removing a quarter of the bank compacts it; the tables are rebuilt at the next search.
    many = ids[6000:10000]
    assert fast.remove(many) == 4000
    reference.remove(many)
    assert fast.search(queries, 31) == reference.search(queries, 31)
    # Entries added back after the compaction (new ids for the same hashes) are found.
    fast.add([i + 1 for i in many], hexes(codes[6000:10000]))
    reference.add([i + 1 for i in many], hexes(codes[6000:10000]))
    assert fast.search(queries, 31) == reference.search(queries, 31)


def test_save_and_load_keep_live_entries_only(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    fast = MihPdqIndex(chunks=16, min_entries_for_tables=0)
    fast.add(ids, hexes(codes))
    fast.remove(ids[:10])
    fast.save(tmp_path / "pdq.index")
    loaded = MihPdqIndex.load(tmp_path / "pdq.index")
    assert len(loaded) == ENTRIES - 10
    queries = planted_queries(codes, rng) + [codes[3].tobytes().hex()]
    assert loaded.search(queries, 31) == fast.search(queries, 31)
    assert loaded.search([codes[3].tobytes().hex()], 0) == [[]]
    (tmp_path / "broken.index").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a PDQ"):
        MihPdqIndex.load(tmp_path / "broken.index")


def test_a_bank_written_by_the_faiss_index_opens(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    old = FaissPdqIndex()
    old.add(ids[:500], hexes(codes[:500]))
    old.remove(ids[:5])
    old.save(tmp_path / "reference-pdq.index")
    opened = MihPdqIndex.load(tmp_path / "reference-pdq.index")
    assert len(opened) == 495
    queries = planted_queries(codes[:500], rng)
    assert opened.search(queries, 31) == old.search(queries, 31)


def test_small_and_empty_banks_and_bad_input() -> None:
    index = MihPdqIndex()
    assert index.search(["0" * 64], 31) == [[]]
    assert index.search([], 31) == []
    index.add([5], ["f" * 64])
    assert [hit.entry_id for hit in index.search(["f" * 63 + "e"], 1)[0]] == [5]
    assert index.search(["f" * 64], -1) == [[]]
    with pytest.raises(ValueError):
        index.add([1], ["abc"])
    with pytest.raises(ValueError):
        index.add([1, 2], ["0" * 64])
    with pytest.raises(ValueError, match="widths"):
        MihPdqIndex(chunks=9)  # 29-bit chunks: a 2 GB offsets table each


def test_pigeonhole_layout() -> None:
    for chunks in range(8, 33):
        assert sum(chunk_widths(chunks)) == 256
        # Every chunk differing in flips + 1 bits would exceed radius 31.
        assert chunks * (flips_for(31, chunks) + 1) > 31
        for entries in (10_000, 1_000_000, 10_000_000):
            for radius in (0, 8, 31, 40):
                flips = chunk_flips(entries, chunks, radius)
                # Exact, with no pigeon to spare: a spare one is probes for nothing.
                assert sum(f + 1 for f in flips) == radius + 1 and min(flips) >= -1
    # 11 chunks at radius 31: 33 pigeons, so one chunk is probed within 1 bit, not 2.
    assert sorted(chunk_flips(10_000_000, 11, 31)) == [1] + [2] * 10
    assert chunk_flips(10_000_000, 16, 0).count(0) == 1  # an exact match: one chunk probed
    assert len(flip_masks(16, 1)) == 17 and len(flip_masks(23, 2)) == 1 + 23 + 253
    # Wider chunks only once the bank is big enough to fill them.
    assert best_chunk_count(100_000) == 16
    assert best_chunk_count(10_000_000) < 16


def test_small_banks_scan_without_tables_and_agree(bank) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    fast, reference = MihPdqIndex(), BruteForcePdqIndex()
    fast.add(ids[:3000], hexes(codes[:3000]))
    reference.add(ids[:3000], hexes(codes[:3000]))
    fast.remove(ids[:7])
    reference.remove(ids[:7])
    queries = planted_queries(codes[:3000], rng)
    for radius in (0, 31, 90):
        assert fast.search(queries, radius) == reference.search(queries, radius)


def test_tables_are_built_once_enough_queries_have_scanned(bank) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    fast = MihPdqIndex(chunks=16, min_entries_for_tables=0, scans_before_build=200)
    reference = BruteForcePdqIndex()
    fast.add(ids, hexes(codes))
    reference.add(ids, hexes(codes))
    queries = planted_queries(codes, rng)  # 102 queries
    assert fast.search(queries, 31) == reference.search(queries, 31)
    assert fast.entries_in_tables == 0  # one image's retro-hunt does not pay for a build
    for _ in range(3):  # searches at 90 bits scan whatever tables exist: no build for them
        assert fast.search(queries, 90) == reference.search(queries, 90)
    assert fast.entries_in_tables == 0
    assert fast.search(queries, 31) == reference.search(queries, 31)
    assert fast.search(queries, 31) == reference.search(queries, 31)
    assert fast.entries_in_tables == ENTRIES


def test_a_batch_split_over_threads_gives_the_same_answers(
    bank, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    codes, ids, rng = bank
    monkeypatch.setattr(mih_pdq_index, "THREADED_ABOVE", 0)
    fast = MihPdqIndex(
        chunks=16, min_entries_for_tables=0, scans_before_build=0, numpy_scan_below=0, threads=3
    )
    reference = BruteForcePdqIndex()
    fast.add(ids, hexes(codes))
    reference.add(ids, hexes(codes))
    queries = planted_queries(codes, rng)
    for radius in (31, 40):  # probed tables; the compiled scan
        assert fast.search(queries, radius) == reference.search(queries, radius)
    assert fast.search(queries[:1], 31) == reference.search(queries[:1], 31)


@pytest.mark.parametrize("chunks", [11, 12, 13])
def test_uneven_flips_find_copies_at_the_radius_and_not_past_it(chunks: int) -> None:
    """The layouts chosen at 1M-10M entries (chunks probed within 1 or 2 bits), on a small
    bank: copies planted 30, 31 and 32 bits away, the flipped bits spread over every chunk
    or packed into the chunks probed least, are found exactly as brute force finds them."""
    rng = np.random.default_rng(chunks)
    codes = rng.integers(0, 256, (6000, 32), dtype=np.uint8)
    ids = list(range(1, 6001))
    fast = MihPdqIndex(chunks=chunks, min_entries_for_tables=0, scans_before_build=0)
    reference = BruteForcePdqIndex()
    fast.add(ids, hexes(codes))
    fast.build()
    reference.add(ids, hexes(codes))
    widths = chunk_widths(chunks)
    offsets = np.concatenate([[0], np.cumsum(widths)])
    flips = chunk_flips(fast.entries_in_tables, chunks, 31)
    # Bit positions chunk by chunk, the least-probed chunks first: each gets flips + 1
    # flipped bits (just missed by its own probes) until the distance is used up.
    order = sorted(range(chunks), key=lambda c: flips[c])
    queries = []
    for row, distance in enumerate((30, 31, 32) * 6):
        if row % 2:
            positions = rng.choice(256, distance, replace=False)
        else:
            positions, left = [], distance
            for c in order:
                take = min(left, flips[c] + 1)
                positions += list(range(offsets[c], offsets[c] + take))
                left -= take
            positions += list(range(offsets[order[-1]] + 3, offsets[order[-1]] + 3 + left))
        code = codes[row * 97].copy()
        for position in positions:
            code[position // 8] ^= np.uint8(1 << (position % 8))
        queries.append(code.tobytes().hex())
    got = fast.search(queries, 31)
    assert got == reference.search(queries, 31)
    assert [bool(hits) for hits in got] == [d <= 31 for d in (30, 31, 32) * 6]
