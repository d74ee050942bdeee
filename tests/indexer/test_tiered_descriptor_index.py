"""The descriptor bank's index: exact below its threshold, an IVF from it, and either
opened from its file; what it finds for planted copies is what the exact index finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ansim.indexer.descriptor_index import BruteForceDescriptorIndex, FaissDescriptorIndex
from ansim.indexer.ivf_descriptor_index import IvfDescriptorIndex
from ansim.indexer.persisted import PersistedIndex
from ansim.indexer.tiered_descriptor_index import TieredDescriptorIndex

DIM = 128
ENTRIES = 12_000
IVF_FROM = 10_000


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def planted_bank(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clustered vectors (200 themes), and degraded copies of 300 of them as queries."""
    rng = np.random.default_rng(seed)
    themes = unit(rng.normal(size=(200, DIM)))
    vectors = unit(themes[rng.integers(0, 200, ENTRIES)] + 0.3 * rng.normal(size=(ENTRIES, DIM)))
    ids = np.arange(100, 100 + ENTRIES, dtype=np.int64)
    planted = rng.choice(ENTRIES, 300, replace=False)
    noise = rng.uniform(0.3, 0.7, (300, 1)) * rng.normal(size=(300, DIM)) / np.sqrt(DIM)
    return vectors, ids, planted, unit(vectors[planted] + noise)


def top_ids(index, queries: np.ndarray) -> list[list[int]]:  # type: ignore[no-untyped-def]
    return [[hit.entry_id for hit in hits] for hits in index.search(queries, 10, 0.5)]


def test_it_turns_compressed_at_its_threshold_and_finds_the_planted_copies(
    tmp_path: Path,
) -> None:
    vectors, ids, planted, queries = planted_bank()
    tiered = TieredDescriptorIndex(DIM, ivf_from=IVF_FROM)
    tiered.add(ids[: IVF_FROM - 1], vectors[: IVF_FROM - 1])
    assert not tiered.compressed
    tiered.add(ids[IVF_FROM - 1 :], vectors[IVF_FROM - 1 :])
    assert tiered.compressed and len(tiered) == ENTRIES
    exact = FaissDescriptorIndex(DIM)
    exact.add(ids, vectors)
    got, want = top_ids(tiered, queries), top_ids(exact, queries)
    assert [row[0] for row in got] == list(ids[planted])  # each copy's original, first
    found = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
    assert found / sum(len(w) for w in want) >= 0.99
    # Removed entries are gone; it stays compressed below the threshold.
    assert tiered.remove(list(ids[:3000])) == 3000
    assert tiered.compressed
    gone = set(ids[:3000].tolist())
    assert not gone & {i for row in top_ids(tiered, queries) for i in row}
    tiered.save(tmp_path / "descriptor.index")
    loaded = TieredDescriptorIndex.load(tmp_path / "descriptor.index", ivf_from=IVF_FROM)
    assert loaded.compressed and top_ids(loaded, queries) == top_ids(tiered, queries)


def test_an_exact_file_opens_exact_below_the_threshold_and_compressed_above(
    tmp_path: Path,
) -> None:
    vectors, ids, _, queries = planted_bank(seed=6)
    exact = FaissDescriptorIndex(DIM)
    exact.add(ids, vectors)
    exact.save(tmp_path / "exact.index")  # a bank written before the IVF
    small = TieredDescriptorIndex.load(tmp_path / "exact.index", ivf_from=ENTRIES + 1)
    assert not small.compressed and top_ids(small, queries) == top_ids(exact, queries)
    large = TieredDescriptorIndex.load(tmp_path / "exact.index", ivf_from=ENTRIES)
    assert large.compressed and len(large) == ENTRIES
    assert [row[:1] for row in top_ids(large, queries)] == [
        row[:1] for row in top_ids(exact, queries)
    ]


def test_the_untrained_ivf_scan_matches_its_twin_after_removals() -> None:
    vectors, ids, _, queries = planted_bank(seed=7)
    ivf, twin = IvfDescriptorIndex(DIM, min_train=ENTRIES + 1), BruteForceDescriptorIndex(DIM)
    for index in (ivf, twin):
        index.add(ids[:2000], vectors[:2000])
        index.remove(list(ids[::3]))
    assert not ivf.trained and len(ivf) == len(twin)
    assert ivf.search(queries[:50], 5, 0.3) == twin.search(queries[:50], 5, 0.3)


def test_writes_are_delta_segments_that_another_reader_applies(tmp_path: Path) -> None:
    vectors, ids, _, queries = planted_bank(seed=8)

    def tiered() -> TieredDescriptorIndex:
        return TieredDescriptorIndex(DIM, ivf_from=IVF_FROM)

    def load(path: Path) -> TieredDescriptorIndex:
        return TieredDescriptorIndex.load(path, ivf_from=IVF_FROM)

    path = tmp_path / "descriptor.index"
    writer = PersistedIndex(path, load, tiered)
    with writer.write(int(ids[8999])) as index:
        index.add(ids[:9000], vectors[:9000])  # the first write: a base
    reader = PersistedIndex(path, load, tiered)
    assert not reader.read().compressed
    for start in range(9000, ENTRIES, 1000):  # past the threshold, one segment a write
        with writer.write(int(ids[start + 999])) as index:
            index.add(ids[start : start + 1000], vectors[start : start + 1000])
    with writer.write() as index:
        index.remove(list(ids[:100]))
    manifest = writer.manifest()
    assert manifest is not None and len(manifest.segments) == 4
    assert all((tmp_path / name).stat().st_size < 600 * 1000 for name in manifest.segments)
    opened = reader.read()  # the base it holds, then the four segments
    assert opened.compressed and len(opened) == ENTRIES - 100
    assert top_ids(opened, queries) == top_ids(writer.read(), queries)
    merged = tmp_path / "merged.delta"
    sources = [tmp_path / name for name in manifest.segments]
    assert TieredDescriptorIndex.merge_changes(sources, merged) == 3000 + 100
    fresh = load(tmp_path / manifest.base)
    fresh.apply_changes(merged)
    assert len(fresh) == ENTRIES - 100
    # Trained at another point (all 3,000 added at once), so compared on recall.
    exact = FaissDescriptorIndex(DIM)
    exact.add(ids[100:], vectors[100:])
    got, want = top_ids(fresh, queries), top_ids(exact, queries)
    found = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
    assert found / sum(len(w) for w in want) >= 0.99


def test_adds_to_an_opened_ivf_leave_its_file_mapped(tmp_path: Path) -> None:
    vectors, ids, planted, queries = planted_bank(seed=9)
    ivf = IvfDescriptorIndex(DIM, min_train=0)
    ivf.add(ids[:10_000], vectors[:10_000])
    ivf.build()
    ivf.save(tmp_path / "ivf.index")
    opened = IvfDescriptorIndex.load(tmp_path / "ivf.index")
    opened.add(ids[10_000:], vectors[10_000:])
    assert isinstance(opened._vectors, np.memmap)  # not copied to append the new rows
    assert [row[:1] for row in top_ids(opened, queries)] == [[i] for i in ids[planted]]
    opened.save(tmp_path / "again.index")
    again = IvfDescriptorIndex.load(tmp_path / "again.index")
    assert len(again) == ENTRIES and top_ids(again, queries) == top_ids(opened, queries)


def test_one_batch_across_the_threshold_builds_the_index_the_exact_route_builds() -> None:
    """A rebuild adds the whole bank at once, straight into the IVF; adds that cross the
    threshold later move the exact index's vectors there first. Same vectors, same order:
    the same cells and the same answers, the batch's vectors kept as the index's own."""
    vectors, ids, _, queries = planted_bank(seed=8)
    at_once = TieredDescriptorIndex(DIM, ivf_from=IVF_FROM)
    at_once.add(ids, vectors)
    in_two = TieredDescriptorIndex(DIM, ivf_from=IVF_FROM)
    in_two.add(ids[:9_000], vectors[:9_000])
    assert not in_two.compressed
    in_two.add(ids[9_000:], vectors[9_000:])
    assert at_once.compressed and in_two.compressed
    assert at_once.inner.cells == in_two.inner.cells
    assert at_once.search(queries, 10, 0.5) == in_two.search(queries, 10, 0.5)
    vectors[:] = 0  # the caller reuses its array: the index is unchanged
    assert top_ids(at_once, queries) == top_ids(in_two, queries)
