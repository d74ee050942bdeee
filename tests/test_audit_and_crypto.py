"""The audit chain catches tampering; contact details never sit in the clear."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from ansim.casework import cases
from ansim.casework.workspace import Workspace
from ansim.pipeline.workspaces import init_workspace
from ansim.store import audit
from ansim.store.tables import AuditEntry, Case
from sqlalchemy import select, text


@pytest.fixture
def workspace_with_history(ansim_home: Path) -> Workspace:
    workspace, _ = init_workspace()
    for kind in ("stalking", "other", "digital-sex-crime"):
        case_id = cases.open_case(workspace, kind, contact="010-1111-2222")
        cases.add_service(workspace, case_id, "counseling", "intake call")
    return workspace


def drop_append_only_triggers(session) -> None:  # noqa: ANN001
    """What someone with write access to the SQLite file does first."""
    session.execute(text("DROP TRIGGER audit_no_update"))
    session.execute(text("DROP TRIGGER audit_no_delete"))


def problems(workspace: Workspace) -> list[str]:
    with workspace.store.session() as session:
        _, found = audit.verify(session, workspace.home.audit_head_file)
    return [p.message for p in found]


def test_intact_chain_verifies(workspace_with_history: Workspace) -> None:
    assert problems(workspace_with_history) == []


def test_edited_row_is_detected(workspace_with_history: Workspace) -> None:
    with workspace_with_history.store.session() as session:
        drop_append_only_triggers(session)
        session.execute(text("UPDATE audit SET actor = 'someone-else' WHERE seq = 3"))
    assert any("edited" in p for p in problems(workspace_with_history))


def test_deleted_middle_row_is_detected(workspace_with_history: Workspace) -> None:
    with workspace_with_history.store.session() as session:
        drop_append_only_triggers(session)
        session.execute(text("DELETE FROM audit WHERE seq = 2"))
    found = problems(workspace_with_history)
    assert any("missing" in p for p in found) and any("link broken" in p for p in found)


def test_reordered_rows_are_detected(workspace_with_history: Workspace) -> None:
    with workspace_with_history.store.session() as session:
        drop_append_only_triggers(session)
    with workspace_with_history.store.session() as session:
        rows = {e.seq: e for e in session.execute(select(AuditEntry)).scalars()}
        first, second = rows[2], rows[3]
        swapped = [
            (c, getattr(first, c), getattr(second, c)) for c in ("action", "subject", "detail")
        ]
        for column, a, b in swapped:
            setattr(first, column, b)
            setattr(second, column, a)
    assert problems(workspace_with_history)


def test_cut_off_tail_is_detected_through_the_anchor(workspace_with_history: Workspace) -> None:
    with workspace_with_history.store.session() as session:
        drop_append_only_triggers(session)
        last = session.execute(text("SELECT max(seq) FROM audit")).scalar_one()
        session.execute(text("DELETE FROM audit WHERE seq = :seq"), {"seq": last})
        # A careful forger also rewinds the head row; the anchor outside the DB still knows.
        session.execute(
            text(
                "UPDATE audit_head SET seq = :seq,"
                " entry_hash = (SELECT entry_hash FROM audit WHERE seq = :seq)"
            ),
            {"seq": last - 1},
        )
    assert any("cut off" in p for p in problems(workspace_with_history))


def test_contact_is_encrypted_at_rest_and_revealed_only_on_request(
    workspace_with_history: Workspace,
) -> None:
    workspace = workspace_with_history
    database_bytes = Path(workspace.home.db_url.removeprefix("sqlite:///")).read_bytes()
    wal = Path(str(workspace.home.db_url.removeprefix("sqlite:///")) + "-wal")
    if wal.exists():
        database_bytes += wal.read_bytes()
    assert b"010-1111-2222" not in database_bytes
    hidden = cases.show_case(workspace, "C-2026-0001")
    assert "contact" not in hidden and hidden["has_contact"] is True
    assert cases.show_case(workspace, "C-2026-0001", reveal=True)["contact"] == "010-1111-2222"
    with workspace.store.session() as session:
        token = session.get(Case, "C-2026-0001").contact_encrypted
        assert token and b"010" not in token
        actions = session.execute(select(AuditEntry.action)).scalars().all()
    assert "case.reveal_contact" in actions


def test_key_file_is_private_and_needed(workspace_with_history: Workspace) -> None:
    key_file = workspace_with_history.home.key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.write_bytes(b"not a key")
    fresh = dataclasses.replace(
        workspace_with_history, cipher=type(workspace_with_history.cipher)(key_file)
    )
    with pytest.raises(Exception, match="malformed"):
        cases.show_case(fresh, "C-2026-0001", reveal=True)
