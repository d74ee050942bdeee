"""The reference bank follows the store: incremental add, withdrawal, rebuild, concurrency."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from ansim.casework import cases
from ansim.detector.descriptor import DESCRIPTOR_DIM
from ansim.indexer import tiered_descriptor_index
from ansim.indexer.descriptor_index import BruteForceDescriptorIndex
from ansim.pipeline import intake, scanning
from ansim.pipeline.workspaces import init_workspace, open_workspace
from ansim.store.tables import Signal
from PIL import Image
from sqlalchemy import select

from tests.helpers import photo_like


def make_images(folder: Path, count: int, first_seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        photo_like(folder / f"img{first_seed + i}.png", seed=first_seed + i) for i in range(count)
    ]


def test_add_is_incremental_and_withdraw_removes_at_once(ansim_home: Path, tmp_path: Path) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "digital-sex-crime")
    images = make_images(tmp_path / "refs", 3)
    results = intake.add_reference_files(workspace, case_id, images)
    assert workspace.banks.sizes()["pdq"] == 3
    copy = tmp_path / "copy.jpg"
    Image.open(images[1]).resize((160, 120)).save(copy, quality=60)
    assert [
        m.reference_id for m in scanning.scan_paths(workspace, [copy], dry_run=True).matches
    ] == [results[1].reference_id]
    intake.withdraw_reference(workspace, results[1].reference_id)
    assert workspace.banks.sizes()["pdq"] == 2
    assert scanning.scan_paths(workspace, [copy], dry_run=True).matches == []
    # An exact copy of a withdrawn file no longer matches either (its digests are gone).
    assert scanning.scan_paths(workspace, [images[1]], dry_run=True).matches == []


def test_index_is_rebuilt_from_the_store_when_lost_or_stale(
    ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    images = make_images(tmp_path / "refs", 4)
    intake.add_reference_files(workspace, case_id, images)
    index_file = next(workspace.home.index_dir.glob("reference-pdq.index"))
    index_file.unlink()
    reopened = open_workspace()
    assert len(scanning.scan_paths(reopened, images[:2], dry_run=True).matches) == 2
    assert reopened.banks.sizes()["pdq"] == 4


def test_an_index_is_checked_against_the_store_only_when_it_is_used(
    ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    intake.add_reference_files(workspace, case_id, make_images(tmp_path / "refs", 3))
    pdq_file = workspace.home.index_dir / "reference-pdq.index"
    pdq_file.unlink()
    reopened = open_workspace()
    with reopened.store.read_session() as session:
        assert len(reopened.banks.index(session, "descriptor")) == 3
        assert not pdq_file.exists()  # not opened, so not rebuilt either
        assert len(reopened.banks.index(session, "pdq")) == 3
    assert pdq_file.exists()


def _add_in_process(home: str, case_id: str, paths: list[str]) -> None:
    import os

    os.environ["ANSIM_HOME"] = home
    workspace = open_workspace()
    intake.add_reference_files(workspace, case_id, [Path(p) for p in paths])


def test_concurrent_writers_lose_no_index_entries(ansim_home: Path, tmp_path: Path) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "stalking")
    batches = [make_images(tmp_path / f"batch{b}", 4, first_seed=10 * b) for b in range(3)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_add_in_process, args=(str(ansim_home), case_id, [str(p) for p in batch])
        )
        for batch in batches
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    fresh = open_workspace()
    assert fresh.banks.sizes()["pdq"] == 12
    every_image = [p for batch in batches for p in batch]
    assert len(scanning.scan_paths(fresh, every_image, dry_run=True).matches) == 12


def test_stored_local_features_are_read_once_and_the_cache_is_bounded(
    ansim_home: Path, tmp_path: Path, monkeypatch
) -> None:
    import ansim.pipeline.banks as banks_module
    import numpy as np
    from ansim.detector.local_verify import SIGNAL_KIND, LocalFeatures
    from ansim.store.tables import Signal
    from sqlalchemy import event, select

    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    results = intake.add_reference_files(workspace, case_id, make_images(tmp_path / "refs", 3))
    owners = {r.reference_id for r in results}
    blob_reads: list[str] = []

    def count_blob_reads(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "signal.blob" in statement:
            blob_reads.append(statement)

    event.listen(workspace.store.engine, "before_cursor_execute", count_blob_reads)
    with workspace.store.read_session() as session:
        stored = {
            owner: LocalFeatures.from_blob(blob)
            for owner, blob in session.execute(
                select(Signal.reference_id, Signal.blob).where(Signal.kind == SIGNAL_KIND)
            )
        }
        blob_reads.clear()
        first = workspace.banks.local_features_of(session, owners | {10_000})
        assert set(first) == owners  # an owner without features is left out
        for owner in owners:
            assert np.array_equal(first[owner].descriptors, stored[owner].descriptors)
        assert len(blob_reads) == 1
        again = workspace.banks.local_features_of(session, owners)
        assert len(blob_reads) == 1  # every blob came from the cache
        assert all(again[owner] is first[owner] for owner in owners)
        monkeypatch.setattr(banks_module, "LOCAL_FEATURES_CACHED", 1)
        workspace.banks.local_features_of(session, owners)
        assert len(workspace.banks._local_features) == 1


def test_a_missed_add_is_found_by_the_checkpoint_even_when_the_count_agrees(
    ansim_home: Path, tmp_path: Path
) -> None:
    """A crash after a store commit leaves an entry out of the index; a missed removal
    elsewhere can make the counts agree again. The checkpoint (last signal id) sees it."""
    from ansim.store.tables import Signal
    from sqlalchemy import delete, select

    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    images = make_images(tmp_path / "refs", 4)
    added = intake.add_reference_files(workspace, case_id, images[:3])
    # A fourth reference reaches the store but not the index (a crash in between)...
    real_add = workspace.banks.add
    workspace.banks.add = lambda rows: None  # type: ignore[method-assign]
    [late] = intake.add_reference_files(workspace, case_id, images[3:])
    workspace.banks.add = real_add  # type: ignore[method-assign]
    # ...and the first one's PDQ row leaves the store but not the index.
    with workspace.session() as session:
        session.execute(
            delete(Signal).where(Signal.reference_id == added[0].reference_id, Signal.kind == "pdq")
        )
        stored = set(session.execute(select(Signal.id).where(Signal.kind == "pdq")).scalars())
    reopened = open_workspace()
    assert reopened.banks.sizes()["pdq"] == len(stored)  # the count alone agrees
    with reopened.session() as session:
        assert "pdq" in reopened.banks.ensure_consistent(session)
    matches = scanning.scan_paths(reopened, [images[3]], dry_run=True).matches
    assert [m.reference_id for m in matches] == [late.reference_id]


def test_a_descriptor_bank_past_its_threshold_is_compressed_and_finds_what_the_twin_does(
    ansim_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The threshold lowered so that a bank of six photos trains its IVF.
    monkeypatch.setattr(tiered_descriptor_index, "IVF_FROM", 4)
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    intake.add_reference_files(workspace, case_id, make_images(tmp_path / "refs", 3))
    with workspace.store.read_session() as session:
        assert not workspace.banks.index(session, "descriptor").compressed
    intake.add_reference_files(workspace, case_id, make_images(tmp_path / "more", 3, 3))
    reopened = open_workspace()  # read from its file
    twin = BruteForceDescriptorIndex(DESCRIPTOR_DIM)
    with reopened.store.read_session() as session:
        bank = reopened.banks.index(session, "descriptor")
        rows = session.execute(
            select(Signal.id, Signal.blob).where(Signal.kind == "descriptor")
        ).all()
    assert bank.compressed and len(bank) == len(rows) == 6
    vectors = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
    twin.add([signal_id for signal_id, _ in rows], vectors)
    copies = vectors + 0.02 * np.random.default_rng(0).normal(size=vectors.shape)
    got, want = bank.search(copies, 3, 0.5), twin.search(copies, 3, 0.5)
    assert [[h.entry_id for h in hits] for hits in got] == [
        [h.entry_id for h in hits] for hits in want
    ]
    assert [hits[0].entry_id for hits in got] == [signal_id for signal_id, _ in rows]


def test_a_replica_follows_the_store_by_checkpoint_at_every_use(
    ansim_home: Path, tmp_path: Path
) -> None:
    """A Ray node's replica (its own folder, written by no one else) is built from the
    store, then sees each addition and withdrawal of the home at its next use."""
    from ansim.pipeline.banks import Banks

    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    images = make_images(tmp_path / "refs", 3)
    added = intake.add_reference_files(workspace, case_id, images[:2])
    replica = Banks(tmp_path / "replica", follow_store=True)
    frozen = Banks(tmp_path / "frozen")  # checked once, as a local worker's banks are

    def sizes(banks: Banks) -> int:
        with workspace.store.read_session() as session:
            return len(banks.index(session, "pdq"))

    assert sizes(replica) == sizes(frozen) == 2
    assert (tmp_path / "replica" / "reference-pdq.index").exists()
    intake.add_reference_files(workspace, case_id, images[2:])
    assert sizes(replica) == 3
    assert sizes(frozen) == 2  # nobody writes its files: it never hears of the addition
    intake.withdraw_reference(workspace, added[0].reference_id)
    assert sizes(replica) == 2
    with workspace.store.read_session() as session:
        pdq_rows = session.execute(
            select(Signal.id, Signal.value, Signal.reference_id).where(Signal.kind == "pdq")
        ).all()
        hits = replica.index(session, "pdq").search([row.value for row in pdq_rows], 0)
    found = {hit.entry_id for row_hits in hits for hit in row_hits}
    assert found == {row.id for row in pdq_rows if row.reference_id != added[0].reference_id}


def test_a_replica_opened_again_drops_what_the_store_no_longer_holds(
    ansim_home: Path, tmp_path: Path
) -> None:
    """A withdrawal while no actor used the replica: opening it rewrites every index that
    still holds the entry, used or not, and the old files holding it are gone."""
    from ansim.pipeline.banks import Banks

    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    added = intake.add_reference_files(workspace, case_id, make_images(tmp_path / "refs", 2))
    folder = tmp_path / "replica"
    with workspace.store.read_session() as session:
        assert Banks(folder, follow_store=True).bring_level(session)  # built from the store
    before = {path.name for path in folder.glob("reference-*.base")}
    intake.withdraw_reference(workspace, added[0].reference_id)
    with workspace.store.read_session() as session:
        rewritten = Banks(folder, follow_store=True).bring_level(session)
        assert "pdq" in rewritten and "descriptor" in rewritten
        assert Banks(folder, follow_store=True).bring_level(session) == []
    assert not before & {path.name for path in folder.glob("reference-*.base")}
