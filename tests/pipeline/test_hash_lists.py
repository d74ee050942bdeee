"""Hash lists in bulk: streamed import (SQLite executemany, PostgreSQL COPY) with malformed
lines reported by number, all-or-nothing when interrupted, the PDQ bank following the
store, exact withdrawal afterwards, and streamed export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.casework import cases
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.indexer.mih_pdq_index import MihPdqIndex
from ansim.indexer.persisted import PersistedIndex
from ansim.pipeline import hash_lists, intake
from ansim.pipeline.banks import Banks
from ansim.store.crypto import case_context
from ansim.store.tables import Reference, Signal
from sqlalchemy import func, select, text

from tests.commands.test_cli_end_to_end import run


@pytest.fixture
def workspace(backend_workspace: Workspace) -> Workspace:
    return backend_workspace


def random_pdq(rng: np.random.Generator, count: int) -> list[str]:
    return [bytes(row).hex() for row in rng.integers(0, 256, (count, 32), dtype=np.uint8)]


def counts(workspace: Workspace) -> tuple[int, int]:
    with workspace.store.session() as session:
        references = session.execute(select(func.count(Reference.id))).scalar_one()
        signals = session.execute(select(func.count(Signal.id))).scalar_one()
    return references, signals


def sqlite_index_names(workspace: Workspace) -> set[str]:
    with workspace.store.session() as session:
        rows = session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
        return set(rows.scalars())


@pytest.mark.parametrize("bulk", [False, True])
def test_import_reports_bad_lines_feeds_the_bank_and_withdraws_exactly(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    # Small batches, so several rounds of executemany / COPY run; `bulk` also drops and
    # rebuilds SQLite's secondary indexes.
    monkeypatch.setattr(hash_lists, "BATCH_LINES", 7)
    monkeypatch.setattr(hash_lists, "BULK_INDEX_BYTES", 0 if bulk else 1 << 40)
    is_sqlite = workspace.store.engine.dialect.name == "sqlite"
    indexes_before = sqlite_index_names(workspace) if is_sqlite else set()
    case_id = cases.open_case(workspace, "other")
    hashes = random_pdq(np.random.default_rng(3), 40)
    lines = [f"{h},partner-{i}" for i, h in enumerate(hashes)]
    lines[5] = "zz" + hashes[5][2:]  # line 6: not hex
    lines[17] = hashes[17][:-1]  # line 18: one digit short
    lines.insert(0, "# exported 2026-12-01")
    listing = tmp_path / "list.txt"
    listing.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")

    seen: list[tuple[int, int]] = []
    report = intake.import_hash_list(
        workspace, case_id, listing, "pdq", lambda done, total: seen.append((done, total))
    )
    assert report.imported == 38 and report.rejected == 2
    assert [r.line for r in report.rejections] == [7, 19]
    assert seen[-1] == (listing.stat().st_size, listing.stat().st_size) and len(seen) == 6
    assert counts(workspace) == (38, 38)
    if is_sqlite:
        assert sqlite_index_names(workspace) == indexes_before

    # Valid line k is reference first + k, and its hash is in the PDQ bank.
    valid = [h for i, h in enumerate(hashes) if i not in (5, 17)]
    with workspace.store.session() as session:
        third = session.get(Reference, report.reference_id_of(2))
        # Labels are encrypted like every label, bound to their case.
        label = workspace.cipher.decrypt_text(
            third.label_encrypted, case_context(third.case_id, "label")
        )
        assert third.label is None and label == "partner-2" and third.origin == "import"
        assert [s.value for s in third.signals] == [valid[2]]
        found = workspace.banks.index(session, "pdq").search(valid[:3], 0)
        owners = workspace.banks.owners_of(session, {h.entry_id for hits in found for h in hits})
    assert sorted(owners.values()) == [report.reference_id_of(i) for i in range(3)]

    intake.withdraw_reference(workspace, report.reference_id_of(2))
    with workspace.store.session() as session:
        assert workspace.banks.index(session, "pdq").search([valid[2]], 0) == [[]]
        assert len(workspace.banks.index(session, "pdq")) == 37
    exported: list[str] = []
    assert intake.export_hash_list(workspace, "pdq", exported.append, case_id) == 37
    exported_lines = "".join(exported).splitlines()
    assert f"{valid[2]},ref-{report.reference_id_of(2)}" not in exported_lines
    assert exported_lines[0] == f"{valid[0]},ref-{report.first_reference_id}"

    # A second list gets the next ids (PostgreSQL's sequences were moved past the block).
    again = intake.import_hash_list(workspace, case_id, listing, "pdq")
    assert again.first_reference_id == report.last_reference_id + 1
    added = intake.add_reference_texts(workspace, case_id, [("note", "a later reference")])
    assert added[0].reference_id == again.last_reference_id + 1


def test_an_interrupted_import_leaves_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hash_lists, "BATCH_LINES", 5)
    monkeypatch.setattr(hash_lists, "BULK_INDEX_BYTES", 0)
    is_sqlite = workspace.store.engine.dialect.name == "sqlite"
    indexes_before = sqlite_index_names(workspace) if is_sqlite else set()
    case_id = cases.open_case(workspace, "other")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(random_pdq(np.random.default_rng(4), 30)) + "\n")
    before = counts(workspace)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C once the first batch of rows is written

    with pytest.raises(KeyboardInterrupt):
        intake.import_hash_list(workspace, case_id, listing, "pdq", interrupt)
    assert counts(workspace) == before
    if is_sqlite:
        assert sqlite_index_names(workspace) == indexes_before
    with workspace.store.session() as session:
        assert len(workspace.banks.index(session, "pdq")) == 0
    # Run again: the whole list goes in.
    assert intake.import_hash_list(workspace, case_id, listing, "pdq").imported == 30


def test_md5_lists_and_refusals(workspace: Workspace, tmp_path: Path) -> None:
    case_id = cases.open_case(workspace, "other")
    listing = tmp_path / "md5.txt"
    listing.write_text(f"{'A' * 32}\n{'b' * 32},x\n{'c' * 64}\n")
    report = intake.import_hash_list(workspace, case_id, listing, "md5")
    assert (report.imported, [r.line for r in report.rejections]) == (2, [3])
    exported: list[str] = []
    intake.export_hash_list(workspace, "md5", exported.append)
    assert "".join(exported).splitlines() == [
        f"{'a' * 32},ref-{report.first_reference_id}",
        f"{'b' * 32},ref-{report.last_reference_id}",
    ]
    with pytest.raises(CaseworkError, match="format"):
        intake.import_hash_list(workspace, case_id, listing, "sha1")
    with pytest.raises(CaseworkError, match="cannot read"):
        intake.import_hash_list(workspace, case_id, tmp_path / "missing.txt", "md5")
    (tmp_path / "latin1.txt").write_bytes(b"\xe9t\xe9\n")
    with pytest.raises(CaseworkError, match="not UTF-8"):
        intake.import_hash_list(workspace, case_id, tmp_path / "latin1.txt", "md5")
    assert counts(workspace) == (2, 2)


def test_ref_import_and_export_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "init", "--json")
    case_id = run(home, "case", "open", "--type", "other", "--json")["case_id"]
    hashes = random_pdq(np.random.default_rng(5), 3)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{hashes[0]}\nnonsense\n{hashes[1]},b\n{hashes[2]}\n")
    report = run(home, "ref", "import", case_id, str(listing), "--json", expect=1)
    assert report["imported"] == 3 and report["reference_ids"] == [1, 3]
    assert report["rejections"][0]["line"] == 2
    exported = tmp_path / "out.txt"
    run(home, "ref", "export", "--out", str(exported))
    assert exported.read_text().splitlines()[1] == f"{hashes[1]},ref-2"
    assert run(home, "ref", "export", "--format", "pdq").splitlines()[2] == f"{hashes[2]},ref-3"


def test_a_crash_before_the_bank_is_written_is_caught_up_from_the_store(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store commits first; a process that dies before the bank's write leaves the
    bank's checkpoint behind. The next opener reads just the newer rows from the store
    (a delta segment on the same base, not a rebuild); a damaged file means a rebuild."""
    case_id = cases.open_case(workspace, "other")
    rng = np.random.default_rng(8)
    first, second = random_pdq(rng, 50), random_pdq(rng, 20)
    for name, hashes in (("first.txt", first), ("second.txt", second)):
        (tmp_path / name).write_text("\n".join(hashes) + "\n")
    intake.import_hash_list(workspace, case_id, tmp_path / "first.txt", "pdq")
    files = PersistedIndex(
        workspace.home.index_dir / "reference-pdq.index", MihPdqIndex.load, MihPdqIndex
    )
    before = files.manifest()
    assert before is not None and before.count == 50
    monkeypatch.setattr(workspace.banks, "add_codes", lambda *args: None)  # "dies" here
    late = intake.import_hash_list(workspace, case_id, tmp_path / "second.txt", "pdq")
    monkeypatch.undo()
    assert files.manifest() == before

    fresh = Banks(workspace.home.index_dir)  # another process, later
    with workspace.store.session() as session:
        assert fresh.ensure_consistent(session) == ["pdq"]
        index = fresh.index(session, "pdq")
        late_signals = dict(
            session.execute(
                select(Signal.value, Signal.id).where(
                    Signal.reference_id >= late.first_reference_id
                )
            ).all()
        )
    after = files.manifest()
    assert after is not None and (after.base, after.generation) == (before.base, before.generation)
    assert len(after.segments) == 1 and after.count == 70
    assert [[h.entry_id for h in hits] for hits in index.search(second, 0)] == [
        [late_signals[h]] for h in second
    ]

    # A damaged segment: the bank is rebuilt from the store, whole.
    (workspace.home.index_dir / after.segments[0]).write_bytes(b"ANSIM-PDQ-DELTA-1\n\x07")
    rebuilt = Banks(workspace.home.index_dir)
    with workspace.store.session() as session:
        assert rebuilt.ensure_consistent(session) == ["pdq"]
        assert len(rebuilt.index(session, "pdq")) == 70
    assert files.manifest().generation == before.generation + 1  # type: ignore[union-attr]
