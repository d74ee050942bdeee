"""The store's per-bank counter (`bank_counter`, kept by triggers, migration 0007) agrees
with a count over the signal rows after every kind of writer, on SQLite and PostgreSQL;
a bank opens by reading it, without counting signal rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.casework import cases, retention
from ansim.casework.workspace import Workspace
from ansim.pipeline import hash_lists, intake, scanning
from ansim.pipeline.workspaces import open_workspace
from ansim.store.tables import BankCounter, Reference, Signal
from PIL import Image
from sqlalchemy import event, func, select

from tests.helpers import photo_like


@pytest.fixture
def workspace(backend_workspace: Workspace) -> Workspace:
    return backend_workspace


def counted(workspace: Workspace) -> dict[tuple[str, str], int]:
    """(kind, owner) -> entries, counted over the signal rows as banks did before 0007."""
    with workspace.store.session() as session:
        references = session.execute(
            select(Signal.kind, func.count(Signal.id))
            .join(Reference, Signal.reference_id == Reference.id)
            .where(Reference.consent == "given")
            .group_by(Signal.kind)
        )
        items = session.execute(
            select(Signal.kind, func.count(Signal.id))
            .where(Signal.item_id.is_not(None))
            .group_by(Signal.kind)
        )
        found = {(kind, "reference"): n for kind, n in references}
        found.update({(kind, "item"): n for kind, n in items})
    return found


def counters(workspace: Workspace) -> dict[tuple[str, str], tuple[int, int]]:
    with workspace.store.session() as session:
        rows = session.execute(
            select(BankCounter.kind, BankCounter.owner, BankCounter.entries, BankCounter.last_id)
        )
        return {(kind, owner): (entries, last_id) for kind, owner, entries, last_id in rows}


def assert_counters_agree(workspace: Workspace) -> None:
    entries = {key: n for key, (n, _) in counters(workspace).items() if n}
    assert entries == counted(workspace)


def random_pdq_list(path: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    path.write_text("".join(f"{bytes(row).hex()}\n" for row in rows))
    return path


@pytest.mark.parametrize("bulk", [False, True])
def test_counters_follow_add_import_scan_withdraw_and_purge(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    # `bulk` on SQLite: the import drops the triggers for its transaction and counts itself.
    monkeypatch.setattr(hash_lists, "BATCH_LINES", 7)
    monkeypatch.setattr(hash_lists, "BULK_INDEX_BYTES", 0 if bulk else 1 << 40)
    case_id = cases.open_case(workspace, "other")
    kept_case = cases.open_case(workspace, "other")
    refs = tmp_path / "refs"
    refs.mkdir()
    images = [photo_like(refs / f"img{i}.png", seed=i) for i in range(3)]
    added = intake.add_reference_files(workspace, case_id, images[:2])
    intake.add_reference_files(workspace, kept_case, images[2:])
    assert counters(workspace)[("pdq", "reference")][0] == 3
    assert_counters_agree(workspace)

    report = intake.import_hash_list(
        workspace, kept_case, random_pdq_list(tmp_path / "list.txt", 20, seed=1), "pdq"
    )
    assert report.imported == 20
    assert counters(workspace)[("pdq", "reference")][0] == 23
    assert_counters_agree(workspace)
    with workspace.store.session() as session:
        newest = session.execute(select(func.max(Signal.id))).scalar_one()
    assert counters(workspace)[("pdq", "reference")][1] == newest

    # The triggers are back after a bulk import: a later intake is counted.
    intake.add_reference_files(workspace, kept_case, [photo_like(refs / "late.png", seed=9)])
    assert counters(workspace)[("pdq", "reference")][0] == 24

    # Scans record crawl-history items (Core inserts on the table).
    copy = tmp_path / "copy.jpg"
    Image.open(images[0]).resize((160, 120)).save(copy, quality=60)
    scanning.scan_paths(workspace, [copy, images[2]])
    assert counters(workspace)[("pdq", "item")][0] == 2
    assert_counters_agree(workspace)

    last_before = counters(workspace)[("pdq", "reference")][1]
    intake.withdraw_reference(workspace, added[1].reference_id)
    assert counters(workspace)[("pdq", "reference")] == (23, last_before)  # last_id only grows
    assert_counters_agree(workspace)

    retention.close_case(workspace, case_id, purge=True)
    assert counters(workspace)[("pdq", "reference")][0] == 22
    assert counters(workspace)[("pdq", "item")][0] == 1  # the copy matched only that case
    assert_counters_agree(workspace)

    # The reference bank's indexes, opened afresh, agree with the counters (nothing to
    # rebuild); the history's are built from the store at first use.
    reopened = open_workspace()
    try:
        with reopened.store.read_session() as session:
            stale = [shown for shown in reopened.banks.status(session) if not shown["fresh"]]
            assert stale == []
            assert len(reopened.banks.index(session, "pdq")) == 22
            assert len(reopened.history.index(session, "pdq")) == 1
    finally:
        reopened.close()


def test_a_consent_change_moves_the_signals_in_and_out_of_the_count(
    workspace: Workspace, tmp_path: Path
) -> None:
    case_id = cases.open_case(workspace, "other")
    image = photo_like(tmp_path / "one.png", seed=4)
    [added] = intake.add_reference_files(workspace, case_id, [image])
    with workspace.store.session() as session:
        session.get_one(Reference, added.reference_id).consent = "withdrawn"
    assert counters(workspace)[("pdq", "reference")][0] == 0
    assert_counters_agree(workspace)
    with workspace.store.session() as session:
        session.get_one(Reference, added.reference_id).consent = "given"
    assert counters(workspace)[("pdq", "reference")][0] == 1
    assert_counters_agree(workspace)


def test_a_bank_opens_without_counting_signal_rows(workspace: Workspace, tmp_path: Path) -> None:
    case_id = cases.open_case(workspace, "other")
    intake.add_reference_files(
        workspace, case_id, [photo_like(tmp_path / f"img{i}.png", seed=i) for i in range(2)]
    )
    reopened = open_workspace()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]  # noqa: ANN001, ARG001, PLR0913
        statements.append(statement.lower())

    event.listen(reopened.store.engine, "before_cursor_execute", record)
    try:
        with reopened.store.read_session() as session:
            assert len(reopened.banks.index(session, "pdq")) == 2
    finally:
        event.remove(reopened.store.engine, "before_cursor_execute", record)
        reopened.close()
    assert any("bank_counter" in statement for statement in statements)
    assert not any("count(" in statement for statement in statements), statements
    assert not any("max(signal.id)" in statement for statement in statements), statements
