"""The audit chain catches tampering; contact details never sit in the clear."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from ansim.casework import cases
from ansim.casework.workspace import Workspace
from ansim.pipeline import intake, keys
from ansim.pipeline.workspaces import init_workspace, key_warnings, open_workspace
from ansim.store import audit
from ansim.store.crypto import KeyProblem
from ansim.store.tables import AuditEntry, AuditHead, Case
from cryptography.fernet import Fernet, InvalidToken
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


# --- a chain no one can quietly rewrite ---------------------------------------------------


def ship_anchor(workspace: Workspace, path: Path) -> Path:
    """What `ansim audit anchor --out` writes (and cron ships off the machine)."""
    with workspace.store.read_session() as session:
        head = session.get(AuditHead, 1)
        path.write_text(audit.shipped_anchor_text(head.seq, head.entry_hash))
    return path


def rewrite_chain_without(workspace: Workspace, seq: int, key: bytes | None) -> None:
    """The forger's rewrite: delete entry `seq`, renumber the rest, recompute every hash
    with the code's own function (under `key`), rewrite the head row and the home anchor."""
    with workspace.store.session() as session:
        drop_append_only_triggers(session)
        session.execute(text("DELETE FROM audit WHERE seq = :seq"), {"seq": seq})
        session.execute(text("UPDATE audit SET seq = seq - 1 WHERE seq > :seq"), {"seq": seq})
        previous = audit.GENESIS_HASH
        for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
            entry.prev_hash = previous
            entry.entry_hash = audit.entry_hash(
                entry.seq,
                entry.at,
                entry.actor,
                entry.action,
                entry.subject,
                entry.detail,
                previous,
                key,
            )
            previous = entry.entry_hash
        head = session.get(AuditHead, 1)
        head.seq, head.entry_hash = head.seq - 1, previous
        new_head = (head.seq, previous)
    workspace.home.audit_head_file.unlink()
    audit.write_anchor(workspace.home.audit_head_file, *new_head, key or b"x" * 32, 0)


def test_rewrite_without_the_audit_key_fails(workspace_with_history: Workspace) -> None:
    rewrite_chain_without(workspace_with_history, 2, key=None)
    found = problems(workspace_with_history)
    assert any("keyed hash" in p for p in found)
    assert any("wrong signature" in p for p in found)


def test_rewrite_with_the_audit_key_is_caught_by_the_shipped_anchor(
    workspace_with_history: Workspace, tmp_path: Path
) -> None:
    workspace = workspace_with_history
    shipped = ship_anchor(workspace, tmp_path / "offsite-anchor.txt")
    cases.open_case(workspace, "other")  # the chain goes on after the shipment
    rewrite_chain_without(workspace, 2, key=workspace.audit_key)
    # Whoever holds the audit key can rewrite everything on the machine...
    assert problems(workspace) == []
    # ...but not the copy of the head kept elsewhere.
    with workspace.store.read_session() as session:
        _, found = audit.verify(session, workspace.home.audit_head_file, shipped=shipped)
    assert any("differs from the anchored head" in p.message for p in found)


def test_shipped_anchor_of_an_intact_chain_verifies(
    workspace_with_history: Workspace, tmp_path: Path
) -> None:
    shipped = ship_anchor(workspace_with_history, tmp_path / "anchor.txt")
    cases.open_case(workspace_with_history, "other")
    with workspace_with_history.store.read_session() as session:
        _, found = audit.verify(session, workspace_with_history.home.audit_head_file, shipped)
    assert found == []


def test_missing_anchor_fails_while_rows_exist(workspace_with_history: Workspace) -> None:
    workspace_with_history.home.audit_head_file.unlink()
    assert any("is missing while entries exist" in p for p in problems(workspace_with_history))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("garbage\n", "malformed"),
        ("99999999999999999999999999 " + "a" * 64 + "\n", "not a sequence number"),
        ("-5 " + "a" * 64 + "\n", "not a sequence number"),
        ("12 not-a-hash\n", "not a SHA-256"),
        ("x" * 10_000, "too long"),
    ],
)
def test_malformed_or_absurd_anchor_gives_a_clear_error(
    workspace_with_history: Workspace, content: str, message: str
) -> None:
    workspace_with_history.home.audit_head_file.write_text(content)
    assert any(message in p for p in problems(workspace_with_history))
    with pytest.raises(audit.AnchorProblem, match=message):
        audit.read_anchor(workspace_with_history.home.audit_head_file)


def test_free_text_stays_out_of_the_chain(workspace_with_history: Workspace) -> None:
    with workspace_with_history.store.read_session() as session:
        chained = " ".join(session.execute(select(AuditEntry.detail)).scalars())
    assert "intake call" not in chained


# --- keys -----------------------------------------------------------------------------


def test_a_different_key_is_refused_not_replaced(workspace_with_history: Workspace) -> None:
    home = workspace_with_history.home
    original = home.key_file.read_bytes()
    home.key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(KeyProblem, match="not the key this store"):
        open_workspace()
    home.key_file.unlink()
    with pytest.raises(KeyProblem, match="encryption key not found"):
        init_workspace()
    assert not home.key_file.exists()  # no new key made behind the analyst's back
    home.key_file.write_bytes(original)
    assert cases.show_case(open_workspace(), "C-2026-0001", reveal=True)["contact"]


def test_key_inside_the_home_is_warned(
    ansim_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, _ = init_workspace()
    assert "inside the home" in key_warnings(workspace.home)[0]
    monkeypatch.setenv("ANSIM_KEY_FILE", str(tmp_path / "elsewhere" / "ansim.key"))
    monkeypatch.setenv("ANSIM_HOME", str(tmp_path / "second-home"))
    second, created = init_workspace()
    assert created and key_warnings(second.home) == []
    assert (tmp_path / "elsewhere" / "ansim.key").exists()


def test_swapped_contacts_are_detected(workspace_with_history: Workspace) -> None:
    workspace = workspace_with_history
    with workspace.store.session() as session:
        first, second = session.get(Case, "C-2026-0001"), session.get(Case, "C-2026-0002")
        first.contact_encrypted, second.contact_encrypted = (
            second.contact_encrypted,
            first.contact_encrypted,
        )
    with pytest.raises(KeyProblem, match="belongs to 'case:C-2026-0002:contact'"):
        cases.show_case(workspace, "C-2026-0001", reveal=True)


def test_pseudonyms_notes_and_labels_are_encrypted_at_rest(
    workspace_with_history: Workspace, tmp_path: Path
) -> None:
    workspace = workspace_with_history
    case_id = cases.open_case(workspace, "stalking", pseudonym="Quiet-Otter")
    cases.add_service(workspace, case_id, "legal", "court date set for the ex-partner")
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("a" * 64 + ",beach-holiday-2019.jpg\n")
    intake.import_hash_list(workspace, case_id, hashes, "pdq")
    stored = database_bytes(workspace)
    for secret in (b"Quiet-Otter", b"court date", b"beach-holiday"):
        assert secret not in stored
    shown = cases.show_case(workspace, case_id)
    assert shown["pseudonym"] == "Quiet-Otter"
    assert shown["services"][0]["note"] == "court date set for the ex-partner"


def test_key_rotation_reencrypts_everything_and_retires_the_old_key(
    workspace_with_history: Workspace,
) -> None:
    workspace = workspace_with_history
    case_id = cases.open_case(workspace, "stalking", pseudonym="Quiet-Otter", contact="x@y.z")
    old_key = workspace.home.key_file.read_bytes().strip()
    with workspace.store.read_session() as session:
        old_token = session.get(Case, case_id).contact_encrypted
    result = keys.rotate(workspace)
    assert result["reencrypted"] >= 8
    new_key = workspace.home.key_file.read_bytes().strip()
    assert new_key != old_key and b"\n" not in new_key
    assert stat.S_IMODE(workspace.home.key_file.stat().st_mode) == 0o600
    reopened = open_workspace()  # the check value moved to the new key
    shown = cases.show_case(reopened, case_id, reveal=True)
    assert (shown["contact"], shown["pseudonym"]) == ("x@y.z", "Quiet-Otter")
    with reopened.store.read_session() as session:
        token = session.get(Case, case_id).contact_encrypted
        _, found = audit.verify(session, reopened.home.audit_head_file)
    assert token != old_token and found == []
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(token)


def database_bytes(workspace: Workspace) -> bytes:
    path = Path(workspace.home.db_url.removeprefix("sqlite:///"))
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
