"""The compressed descriptor index (IVF cells over 8-bit codes, exact re-rank) must find
>= 99% of what the exact index finds for copies of stored vectors, with exact scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.indexer.descriptor_index import FaissDescriptorIndex
from ansim.indexer.ivf_descriptor_index import IvfDescriptorIndex

DIM = 128
ENTRIES = 30_000


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def bank() -> tuple[np.ndarray, list[int], np.ndarray]:
    rng = np.random.default_rng(21)
    # Clustered like real descriptors: 300 themes, each entry a theme plus its own detail.
    themes = unit(rng.normal(size=(300, DIM)))
    vectors = unit(
        themes[rng.integers(0, 300, ENTRIES)]
        + 0.6 * rng.normal(size=(ENTRIES, DIM)) / np.sqrt(DIM) * 4
    )
    ids = [10 + 2 * i for i in range(ENTRIES)]
    # Queries: copies of stored vectors, degraded (similarity ~0.8-0.95), and unrelated.
    rows = rng.choice(ENTRIES, 400, replace=False)
    noise = rng.uniform(0.3, 0.8, (400, 1)) * rng.normal(size=(400, DIM)) / np.sqrt(DIM)
    queries = np.concatenate([unit(vectors[rows] + noise), unit(rng.normal(size=(50, DIM)))])
    return vectors, ids, queries


def candidate_recall(fast, exact, queries: np.ndarray, k: int, floor: float) -> float:  # type: ignore[no-untyped-def]
    wanted = found = 0
    for got, want in zip(
        fast.search(queries, k, floor), exact.search(queries, k, floor), strict=True
    ):
        want_ids = {h.entry_id for h in want}
        got_by_id = {h.entry_id: h.similarity for h in got}
        wanted += len(want_ids)
        found += len(want_ids & set(got_by_id))
        for hit in want:  # what it returns is scored exactly
            if hit.entry_id in got_by_id:
                assert got_by_id[hit.entry_id] == pytest.approx(hit.similarity, abs=1e-5)
    return found / wanted


def test_candidate_recall_against_the_exact_index(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vectors, ids, queries = bank
    exact = FaissDescriptorIndex(DIM)
    exact.add(ids, vectors)
    fast = IvfDescriptorIndex(DIM, min_train=10_000)
    fast.add(ids[:-500], vectors[:-500])
    fast.build()
    fast.add(ids[-500:], vectors[-500:])  # filed into the trained cells
    assert fast.trained and len(fast) == ENTRIES
    assert candidate_recall(fast, exact, queries, 10, 0.5) >= 0.99
    # The copy itself is the top hit for every degraded query.
    tops = fast.search(queries[:400], 1, 0.5)
    assert all(hits for hits in tops)
    assert fast.memory_bytes() < vectors.nbytes / 2

    gone = ids[:3000]
    assert fast.remove(gone + [1]) == 3000 and exact.remove(gone) == 3000
    assert candidate_recall(fast, exact, queries, 10, 0.5) >= 0.99
    assert not {h.entry_id for hits in fast.search(queries, 10, 0.5) for h in hits} & set(gone)

    fast.save(tmp_path / "descriptor.index")
    loaded = IvfDescriptorIndex.load(tmp_path / "descriptor.index")
    assert isinstance(loaded._vectors, np.memmap) and len(loaded) == ENTRIES - 3000
    assert loaded.search(queries, 10, 0.5) == fast.search(queries, 10, 0.5)


def test_small_banks_are_searched_exactly(bank, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vectors, ids, queries = bank
    exact = FaissDescriptorIndex(DIM)
    small = IvfDescriptorIndex(DIM)
    for index in (exact, small):
        index.add(ids[:2000], vectors[:2000])
    assert not small.trained
    assert [[h.entry_id for h in hits] for hits in small.search(queries, 5)] == [
        [h.entry_id for h in hits] for hits in exact.search(queries, 5)
    ]
    assert IvfDescriptorIndex(DIM).search(queries[:2], 5) == [[], []]
    IvfDescriptorIndex(DIM).save(tmp_path / "empty.index")
    assert len(IvfDescriptorIndex.load(tmp_path / "empty.index")) == 0
    with pytest.raises(ValueError):
        small.add([1, 2], vectors[:1])
