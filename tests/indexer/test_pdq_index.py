"""The FAISS PDQ index must return exactly what the brute-force reference returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.indexer.pdq_index import BruteForcePdqIndex, FaissPdqIndex


def random_hashes(rng: np.random.Generator, count: int) -> list[str]:
    return [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(count)]


def flip_bits(pdq_hex: str, rng: np.random.Generator, bits: int) -> str:
    value = int(pdq_hex, 16)
    for position in rng.choice(256, bits, replace=False):
        value ^= 1 << int(position)
    return f"{value:064x}"


@pytest.fixture
def populated() -> tuple[FaissPdqIndex, BruteForcePdqIndex, list[str], np.random.Generator]:
    rng = np.random.default_rng(7)
    hashes = random_hashes(rng, 3000)
    fast, reference = FaissPdqIndex(), BruteForcePdqIndex()
    ids = list(range(100, 3100))
    fast.add(ids, hashes)
    reference.add(ids, hashes)
    return fast, reference, hashes, rng


def test_fast_and_brute_force_agree_on_near_and_far_queries(populated) -> None:  # type: ignore[no-untyped-def]
    fast, reference, hashes, rng = populated
    queries = [flip_bits(h, rng, int(rng.integers(0, 40))) for h in hashes[:200]]
    queries += random_hashes(rng, 50)
    for radius in (0, 10, 31, 100):
        assert fast.search(queries, radius) == reference.search(queries, radius)
    assert any(fast.search(queries, 31))


def test_threshold_is_inclusive(populated) -> None:  # type: ignore[no-untyped-def]
    fast, _, hashes, rng = populated
    query = flip_bits(hashes[0], rng, 31)
    assert [hit.distance for hit in fast.search([query], 31)[0]] == [31]
    assert fast.search([query], 30) == [[]]


def test_incremental_remove_and_persistence(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fast, reference, hashes, _ = populated
    assert fast.remove([100, 101, 999999]) == 2
    reference.remove([100, 101])
    assert fast.search(hashes[:3], 0) == reference.search(hashes[:3], 0)
    assert fast.search(hashes[:1], 0) == [[]]
    fast.save(tmp_path / "pdq.index")
    loaded = FaissPdqIndex.load(tmp_path / "pdq.index")
    assert len(loaded) == len(fast) == 2998
    assert loaded.search(hashes[2:4], 5) == fast.search(hashes[2:4], 5)


def test_empty_index_and_bad_hashes() -> None:
    index = FaissPdqIndex()
    assert index.search(["0" * 64], 31) == [[]]
    with pytest.raises(ValueError):
        index.add([1], ["abc"])
