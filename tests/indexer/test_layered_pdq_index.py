"""The crawl history's PDQ bank as a mapped table file plus an in-memory layer must return
exactly what the brute-force twin returns: after writing and mapping the file, with
entries added and removed on top, through delta segments and a compaction, at the
probing radius and at the robust decision's wide one (a scan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.indexer import mih_table_file
from ansim.indexer.layered_pdq_index import HistoryPdqIndex, LayeredPdqIndex, load_history_pdq
from ansim.indexer.mih_table_file import TABLE_FILE_MAGIC, MappedMihTables, write_table_file
from ansim.indexer.pdq_index import BruteForcePdqIndex, PdqIndex
from ansim.indexer.persisted import PersistedIndex

from tests.indexer.test_mih_pdq_index import flipped, hexes, planted_queries

ENTRIES = 9_000


@pytest.fixture(scope="module")
def bank() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(19)
    codes = rng.integers(0, 256, (ENTRIES, 32), dtype=np.uint8)
    for start in range(0, 400, 20):  # clusters of near-identical hashes (a video's frames)
        for row in range(start + 1, start + 20):
            codes[row] = flipped(codes[start], rng, int(rng.integers(0, 10)))
    return np.arange(500, 500 + 2 * ENTRIES, 2, dtype=np.int64), codes


def twin_of(ids: np.ndarray, codes: np.ndarray) -> BruteForcePdqIndex:
    twin = BruteForcePdqIndex()
    twin.add(ids.tolist(), hexes(codes))
    return twin


def assert_same_hits(index: PdqIndex, twin: PdqIndex, queries: list[str], radius: int) -> None:
    got = [[(h.distance, h.entry_id) for h in hits] for hits in index.search(queries, radius)]
    want = [[(h.distance, h.entry_id) for h in hits] for hits in twin.search(queries, radius)]
    assert got == want
    assert sum(map(len, want)) > len(queries) // 4  # the queries do hit something


def written(path: Path, ids: np.ndarray, codes: np.ndarray, chunks: int) -> LayeredPdqIndex:
    half = len(ids) // 2  # two batches, as a compaction hands over two layers
    batches = [(ids[:half], codes[:half]), (ids[half:], codes[half:])]
    write_table_file(path, len(ids), batches, chunks=chunks)
    return LayeredPdqIndex.load(path, threads=2)


@pytest.mark.parametrize("chunks", [16, 12])
def test_table_file_finds_exactly_what_brute_force_finds(
    bank, tmp_path: Path, chunks: int, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    monkeypatch.setattr(mih_table_file, "SCAN_BLOCK", 1024)  # the wide scan in 9 blocks
    index = written(tmp_path / "history.tables", ids, codes, chunks)
    queries = planted_queries(codes, np.random.default_rng(chunks))
    twin = twin_of(ids, codes)
    assert_same_hits(index, twin, queries, 31)
    assert_same_hits(index, twin, queries[:12], 90)  # the wide search scans the hashes
    assert index.base.ids_sorted and len(index) == ENTRIES


def test_layers_agree_with_the_twin_after_adds_and_removals(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    base_rows = ENTRIES - 1_000
    index = written(tmp_path / "history.tables", ids[:base_rows], codes[:base_rows], 16)
    twin = twin_of(ids[:base_rows], codes[:base_rows])
    later_ids, later_codes = ids[base_rows:], codes[base_rows:]
    index.add(later_ids.tolist(), hexes(later_codes))
    twin.add(later_ids.tolist(), hexes(later_codes))
    gone = [int(i) for i in ids[::7]]  # in both layers, and ids never stored
    assert index.remove(gone + [1, 3]) == twin.remove(gone + [1, 3]) == len(gone)
    assert index.remove(gone) == 0  # removed twice: nothing left to remove
    assert len(index) == len(twin)
    queries = planted_queries(codes, np.random.default_rng(3))
    assert_same_hits(index, twin, queries, 31)


def test_unsorted_ids_are_removed_by_scanning(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    shuffled = np.random.default_rng(4).permutation(len(ids))
    index = written(tmp_path / "history.tables", ids[shuffled], codes[shuffled], 16)
    assert not index.base.ids_sorted
    twin = twin_of(ids, codes)
    gone = [int(i) for i in ids[1::5]]
    assert index.remove(gone) == twin.remove(gone)
    assert_same_hits(index, twin, planted_queries(codes, np.random.default_rng(5)), 31)


def test_history_bank_becomes_a_table_file_through_segments_and_compaction(
    bank, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    files = PersistedIndex(
        tmp_path / "history-pdq.index",
        load_history_pdq,
        lambda: HistoryPdqIndex(table_file_from=1_000, min_entries_for_tables=0),
    )
    twin = BruteForcePdqIndex()
    with files.write(last_added=int(ids[4_999])) as index:
        index.add(ids[:5_000].tolist(), hexes(codes[:5_000]))
    twin.add(ids[:5_000].tolist(), hexes(codes[:5_000]))
    reader = PersistedIndex(files.path, load_history_pdq, HistoryPdqIndex)
    assert isinstance(reader.read(), LayeredPdqIndex)  # the first base is a table file
    # A small write is a delta segment on top of the table file...
    with files.write(last_added=int(ids[5_099])) as index:
        index.add(ids[5_000:5_100].tolist(), hexes(codes[5_000:5_100]))
        index.remove([int(ids[0]), int(ids[5_050])])
    twin.add(ids[5_000:5_100].tolist(), hexes(codes[5_000:5_100]))
    twin.remove([int(ids[0]), int(ids[5_050])])
    manifest = files.manifest()
    assert manifest is not None and len(manifest.segments) == 1
    queries = planted_queries(codes[:5_100], np.random.default_rng(6))
    assert_same_hits(reader.read(), twin, queries, 31)
    # ...and a compaction writes both layers' live entries into a new table file.
    with files.write(last_added=int(ids[-1])) as index:
        index.add(ids[5_100:].tolist(), hexes(codes[5_100:]))
    twin.add(ids[5_100:].tolist(), hexes(codes[5_100:]))
    files.compact()
    manifest = files.manifest()
    assert manifest is not None and not manifest.segments
    fresh = PersistedIndex(files.path, load_history_pdq, HistoryPdqIndex).read()
    assert isinstance(fresh, LayeredPdqIndex) and not len(fresh.recent)
    assert len(fresh) == len(twin) == ENTRIES - 2
    assert_same_hits(fresh, twin, planted_queries(codes, np.random.default_rng(7)), 31)


def test_a_small_history_stays_a_plain_file(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    small = HistoryPdqIndex(table_file_from=10_000)
    small.add(ids[:100].tolist(), hexes(codes[:100]))
    small.save(tmp_path / "small.index")
    assert isinstance(load_history_pdq(tmp_path / "small.index"), HistoryPdqIndex)


def test_damaged_table_files_are_refused(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids, codes = bank
    path = tmp_path / "history.tables"
    written(path, ids[:500], codes[:500], 16)
    whole = path.read_bytes()
    path.write_bytes(whole[:-4096])
    with pytest.raises(ValueError, match="truncated"):
        MappedMihTables(path, threads=1)
    chunks_at = len(TABLE_FILE_MAGIC) + 8  # the header's chunk count
    path.write_bytes(whole[:chunks_at] + b"\xff" * 8 + whole[chunks_at + 8 :])
    with pytest.raises(ValueError):
        MappedMihTables(path, threads=1)
    with pytest.raises(ValueError, match="announced"):
        write_table_file(path, 600, [(ids[:500], codes[:500])], chunks=16)
