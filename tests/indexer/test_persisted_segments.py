"""An index kept as a manifest + base + delta segments: a change writes bytes in proportion
to itself, a crash at any step leaves an index that opens whole (old or new, never half),
and processes see each other's changes. Held to the brute-force twin throughout."""

from __future__ import annotations

import os
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from ansim.indexer import persisted as persisted_module
from ansim.indexer.mih_pdq_index import CHANGES_MAGIC, MihPdqIndex
from ansim.indexer.pdq_index import BruteForcePdqIndex
from ansim.indexer.persisted import PersistedIndex

BASE_ENTRIES = 20_000
RADIUS = 31


def pdq_files(path: Path) -> PersistedIndex[MihPdqIndex]:
    return PersistedIndex(path, MihPdqIndex.load, MihPdqIndex)


def random_codes(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32), dtype=np.uint8)


def near(code: np.ndarray, seed: int, bits: int) -> np.ndarray:
    out = code.copy()
    for position in np.random.default_rng(seed).choice(256, bits, replace=False):
        out[position // 8] ^= np.uint8(1 << (position % 8))
    return out


def answers(index, queries: np.ndarray) -> list[list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    hexes = [bytes(q).hex() for q in queries]
    return [sorted((h.entry_id, h.distance) for h in hits) for hits in index.search(hexes, RADIUS)]


def twin_of(ids: list[int], codes: np.ndarray) -> BruteForcePdqIndex:
    twin = BruteForcePdqIndex()
    twin.add(ids, [bytes(c).hex() for c in codes])
    return twin


@pytest.fixture
def base(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 20,000-entry bank saved as its base (ids 1..20,000)."""
    codes = random_codes(1, BASE_ENTRIES)
    index = MihPdqIndex()
    index.add_codes(np.arange(1, BASE_ENTRIES + 1), codes)
    pdq_files(tmp_path / "pdq.index").replace(index, last_id=BASE_ENTRIES)
    return tmp_path / "pdq.index", codes


def test_adding_and_withdrawing_one_entry_writes_bytes_for_that_entry_only(
    base: tuple[Path, np.ndarray],
) -> None:
    path, codes = base
    files = pdq_files(path)
    [base_name] = files.manifest().file_names()  # type: ignore[union-attr]
    base_file = path.parent / base_name
    base_stat = base_file.stat()
    assert base_stat.st_size > 40 * BASE_ENTRIES

    added = near(codes[7], seed=2, bits=5)
    with files.write(last_added=BASE_ENTRIES + 1) as index:
        index.add_codes(np.asarray([BASE_ENTRIES + 1]), added[None])
    with files.write() as index:
        assert index.remove([8]) == 1
    manifest = files.manifest()
    assert manifest is not None and manifest.last_id == BASE_ENTRIES + 1
    assert manifest.count == BASE_ENTRIES and manifest.base == base_name
    header = len(CHANGES_MAGIC) + 16
    sizes = [(path.parent / name).stat().st_size for name in manifest.segments]
    assert sizes == [header + 8 + 32, header + 8]  # one entry's id + hash; one removed id
    assert path.stat().st_size < 1024  # the manifest
    after = base_file.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        base_stat.st_ino,
        base_stat.st_mtime_ns,
        base_stat.st_size,
    )

    # Another process's view (a fresh object) agrees with the twin.
    ids = [i for i in range(1, BASE_ENTRIES + 1) if i != 8] + [BASE_ENTRIES + 1]
    twin = twin_of(ids, np.concatenate([np.delete(codes, 7, axis=0), added[None]]))
    queries = np.stack([codes[7], codes[0], added, near(codes[100], 3, 20)])
    assert answers(pdq_files(path).read(), queries) == answers(twin, queries)
    # Entry 8 (codes[7]) is withdrawn; its near copy, added after, is found.
    assert answers(pdq_files(path).read(), queries)[0] == [(BASE_ENTRIES + 1, 5)]


def test_segments_are_compacted_into_a_new_base(
    base: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, codes = base
    monkeypatch.setattr(persisted_module, "SEGMENT_FLOOR", 0)
    files = pdq_files(path)
    old_base = files.manifest().base  # type: ignore[union-attr]
    per_write = BASE_ENTRIES // 10  # the segments may hold a quarter of the base
    new_codes = random_codes(5, 3 * per_write)
    for write in range(3):
        rows = slice(write * per_write, (write + 1) * per_write)
        ids = BASE_ENTRIES + 1 + np.arange(rows.start, rows.stop)
        with files.write(last_added=int(ids[-1])) as index:
            index.add_codes(ids, new_codes[rows])
        segments = files.manifest().segments  # type: ignore[union-attr]
        assert len(segments) == [1, 2, 0][write]
    manifest = files.manifest()
    assert manifest is not None and manifest.base != old_base and manifest.generation == 2
    assert manifest.base_entries == manifest.count == BASE_ENTRIES + 3 * per_write
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == sorted(["pdq.index", "pdq.index.lock", manifest.base])
    all_ids = list(range(1, BASE_ENTRIES + 3 * per_write + 1))
    twin = twin_of(all_ids, np.concatenate([codes, new_codes]))
    queries = np.stack([codes[3], new_codes[-1], near(new_codes[10], 6, 12)])
    assert answers(pdq_files(path).read(), queries) == answers(twin, queries)


def _write_and_die(path: Path, calls_before_exit: int, mode: str) -> None:
    """Add entries 20,001-20,003 and remove entry 1, killed (os._exit, no clean-up) just
    before the `calls_before_exit`-th rename or fsync of the write."""
    seen = {"calls": 0}
    if mode == "merge":
        # Two segments first (each adds an entry and removes it); the write merges them.
        for passing in (10**9, 10**9 + 1):
            with pdq_files(path).write() as index:
                index.add_codes(np.asarray([passing]), random_codes(passing, 1))
                index.remove([passing])
        persisted_module.MAX_SEGMENTS = 2  # type: ignore[attr-defined]

    def dying(real: Callable) -> Callable:  # type: ignore[type-arg]
        def step(*args):  # type: ignore[no-untyped-def]
            seen["calls"] += 1
            if seen["calls"] == calls_before_exit:
                os._exit(9)
            return real(*args)

        return step

    persisted_module.os.replace = dying(os.replace)  # type: ignore[attr-defined]
    persisted_module.fsync_path = dying(persisted_module.fsync_path)  # type: ignore[attr-defined]
    if mode == "compaction":
        persisted_module.SEGMENT_FLOOR = 0  # type: ignore[attr-defined]
        persisted_module.COMPACT_FRACTION = 0.0  # type: ignore[attr-defined]
    files = pdq_files(path)
    with files.write(last_added=BASE_ENTRIES + 3) as index:
        index.add_codes(BASE_ENTRIES + np.arange(1, 4), random_codes(9, 3))
        index.remove([1])
    os._exit(0)


# A segment write is: fsync segment, rename it, fsync manifest, rename it, fsync folder.
# A compaction: fsync base, rename it, then the same. A merge: fsync the merged segment,
# rename it, then the same as a segment write. Steps: (renames before the manifest's, all).
STEPS = {"segment": (4, 5), "compaction": (4, 5), "merge": (6, 7)}


@pytest.mark.parametrize(
    ("mode", "calls_before_exit"),
    [(mode, call) for mode, (_, steps) in STEPS.items() for call in range(1, steps + 2)],
)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_index_whole(
    base: tuple[Path, np.ndarray], mode: str, calls_before_exit: int
) -> None:
    path, codes = base
    process = get_context("spawn").Process(
        target=_write_and_die, args=(path, calls_before_exit, mode)
    )
    process.start()
    process.join(60)
    manifest_rename, steps = STEPS[mode]
    published = calls_before_exit > manifest_rename  # the manifest was renamed into place
    assert process.exitcode == (0 if calls_before_exit > steps else 9)

    files = pdq_files(path)
    manifest = files.manifest()
    assert manifest is not None
    assert manifest.last_id == (BASE_ENTRIES + 3 if published else BASE_ENTRIES)
    added = random_codes(9, 3)
    if published:
        ids = list(range(2, BASE_ENTRIES + 4))
        twin = twin_of(ids, np.concatenate([codes[1:], added]))
    else:
        twin = twin_of(list(range(1, BASE_ENTRIES + 1)), codes)
    index = files.read()
    assert len(index) == len(twin)
    queries = np.stack([codes[0], codes[1], added[2], near(added[0], 4, 9)])
    assert answers(index, queries) == answers(twin, queries)

    # The next write works on top of whatever the crash left, and a compaction clears it.
    with files.write(last_added=BASE_ENTRIES + 10) as again:
        again.add_codes(np.asarray([BASE_ENTRIES + 10]), codes[:1])
    files.compact()
    leftovers = {p.name for p in path.parent.iterdir()} - {"pdq.index", "pdq.index.lock"}
    assert leftovers == {files.manifest().base}  # type: ignore[union-attr]
    assert len(pdq_files(path).read()) == len(twin) + 1


def _add_in_other_process(path: Path, entry_id: int, code_hex: str, remove: int) -> None:
    files = pdq_files(path)
    with files.write(last_added=entry_id) as index:
        index.add([entry_id], [code_hex])
        index.remove([remove])


def test_processes_see_each_others_changes_without_reloading_the_base(
    base: tuple[Path, np.ndarray],
) -> None:
    path, codes = base
    reader = pdq_files(path)
    loaded = reader.read()
    new_code = near(codes[50], 11, 3)
    for round_, entry_id in enumerate([BASE_ENTRIES + 1, BASE_ENTRIES + 2]):
        process = get_context("spawn").Process(
            target=_add_in_other_process,
            args=(path, entry_id, bytes(new_code).hex(), 1000 + round_),
        )
        process.start()
        process.join(60)
        assert process.exitcode == 0
        seen = reader.read()
        assert seen is loaded  # the other process's segment applied, the base not reread
        assert reader.manifest().last_id == entry_id  # type: ignore[union-attr]
    assert answers(reader.read(), np.stack([codes[50], codes[999], codes[1000]])) == [
        sorted([(51, 0), (BASE_ENTRIES + 1, 3), (BASE_ENTRIES + 2, 3)]),
        [],
        [],
    ]
    assert len(reader.read()) == BASE_ENTRIES


def test_a_bank_file_from_before_manifests_opens_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "pdq.index"
    codes = random_codes(12, 100)
    old = MihPdqIndex()
    old.add_codes(np.arange(1, 101), codes)
    old.save(path)
    (tmp_path / "pdq.index.checkpoint").write_text('{"last_id": 100}')
    files = pdq_files(path)
    assert files.last_id() == 100 and len(files.read()) == 100
    with files.write(last_added=101) as index:
        index.add_codes(np.asarray([101]), codes[:1])
    manifest = files.manifest()
    assert manifest is not None and manifest.count == 101 and manifest.last_id == 101
    assert not (tmp_path / "pdq.index.checkpoint").exists()
    assert answers(pdq_files(path).read(), codes[:1]) == [[(1, 0), (101, 0)]]


def test_many_small_writes_merge_segments_without_rewriting_the_base(
    base: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, codes = base
    monkeypatch.setattr(persisted_module, "MAX_SEGMENTS", 3)
    writer, reader = pdq_files(path), pdq_files(path)
    followed = reader.read()
    base_name = writer.manifest().base  # type: ignore[union-attr]
    new_codes = random_codes(21, 8)
    for step in range(8):
        entry_id = BASE_ENTRIES + 1 + step
        with writer.write(last_added=entry_id) as index:
            index.add_codes(np.asarray([entry_id]), new_codes[step : step + 1])
            if step == 5:
                index.remove([BASE_ENTRIES + 2, 10])  # an entry of a merged segment; a base one
        assert reader.read() is followed  # kept up by applying segments, merged or not
        manifest = writer.manifest()
        assert manifest is not None and manifest.base == base_name
        assert len(manifest.segments) <= 4
    segment_bytes = [(path.parent / name).stat().st_size for name in manifest.segments]
    assert sum(segment_bytes) < 40 * 20  # the merged changes, not the base
    ids = [i for i in range(1, BASE_ENTRIES + 9) if i not in (10, BASE_ENTRIES + 2)]
    all_codes = np.concatenate([codes, new_codes])
    twin = twin_of(ids, all_codes[np.asarray(ids) - 1])
    queries = np.stack([codes[9], new_codes[1], new_codes[7], near(new_codes[3], 2, 7)])
    assert answers(pdq_files(path).read(), queries) == answers(twin, queries)
    assert answers(reader.read(), queries) == answers(twin, queries)
    listed = {"pdq.index", "pdq.index.lock", base_name, *manifest.segments}
    assert {p.name for p in path.parent.iterdir()} == listed


def home_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


def test_a_purge_erases_removed_entries_from_every_file(base: tuple[Path, np.ndarray]) -> None:
    """A withdrawal leaves the removed hash in the base (a tombstone in a segment); an
    erasing removal, and `erase_removed` after earlier withdrawals, leave no file with it."""
    path, codes = base
    files = pdq_files(path)
    withdrawn, purged = bytes(codes[99]), bytes(codes[199])
    with files.write() as index:
        index.remove([100])
    assert withdrawn in home_bytes(path.parent)  # fast, and still on disk
    with files.write(erase=True) as index:
        index.remove([200])
    assert purged not in home_bytes(path.parent)
    assert withdrawn not in home_bytes(path.parent)  # the same compaction took it too
    with files.write() as index:
        index.remove([300])
    assert bytes(codes[299]) in home_bytes(path.parent)
    files.erase_removed()
    assert bytes(codes[299]) not in home_bytes(path.parent)
    assert answers(files.read(), codes[[99, 199, 299, 399]]) == answers(
        twin_of([400], codes[[399]]), codes[[99, 199, 299, 399]]
    )
