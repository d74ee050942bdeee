"""The lean SQLite opening of listing commands (`store.plain_sqlite`): it lists the same rows
as the ORM reads them, its audit entries join the one chain, and it steps aside (None) for
every home that needs the full opening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ansim.casework import cases, hosts, listings, queue, retention
from ansim.casework.workspace import Workspace
from ansim.pipeline import intake
from ansim.pipeline.workspaces import init_workspace
from ansim.store import audit
from ansim.store.crypto import create_key_file
from ansim.store.home import Home
from ansim.store.plain_sqlite import PlainHome, open_plain
from ansim.store.tables import Reference

from tests.casework_fixtures import found_at, open_case_with_reference, reposted_copy


def populate(workspace: Workspace, folder: Path) -> dict[str, object]:
    """Two cases (one closed), a withdrawn and a standing reference, a queue item, hosts."""
    case_id, reference_id, reference = open_case_with_reference(workspace, folder, seed=5)
    other_case, withdrawn, _ = open_case_with_reference(workspace, folder / "b", seed=6)
    intake.withdraw_reference(workspace, withdrawn)
    retention.close_case(workspace, other_case)
    copy = reposted_copy(reference, folder / "copy.jpg")
    [item] = found_at(workspace, copy, "https://img.host.example/a.jpg")
    hosts.set_host(workspace, "host.example", abuse_email="abuse@host.example", lang="ko")
    hosts.set_host(workspace, "board.example.kr", form_url="https://board.example.kr/report")
    return {"case": case_id, "other": other_case, "reference": reference_id, "item": item}


@pytest.fixture
def populated(ansim_home: Path, tmp_path: Path) -> tuple[Workspace, dict[str, object]]:
    workspace, _ = init_workspace()
    return workspace, populate(workspace, tmp_path)


def every_listing(store: listings.ListingStore, ids: dict[str, object]) -> dict[str, object]:
    case_id = str(ids["case"])
    return {
        "cases": [c.as_dict() for c in listings.list_cases(store)],
        "open cases": [c.as_dict() for c in listings.list_cases(store, "open")],
        "queue": listings.list_queue(store, case_id=case_id),
        "new items": listings.list_queue(store, status="new"),
        "references": listings.list_references(store, bank_kinds={"pdq"}),
        "case images": listings.list_references(store, case_id, "image", {"pdq"}),
        "hosts": listings.list_hosts(store),
    }


def plain_of(workspace: Workspace) -> PlainHome:
    opened = open_plain(workspace.home, workspace.actor)
    assert opened is not None
    return opened


def test_lists_what_the_orm_reads(backend_workspace: Workspace, tmp_path: Path) -> None:
    """Through a Session on each backend, and through sqlite3 on SQLite: the same lists,
    and what the ORM reads of the same rows."""
    workspace = backend_workspace
    ids = populate(workspace, tmp_path)
    with workspace.listing() as store:
        listed = every_listing(store, ids)
    if workspace.home.db_url.startswith("sqlite"):
        plain = plain_of(workspace)
        with plain.transaction() as store:
            assert every_listing(store, ids) == listed
        plain.close()
    else:
        assert open_plain(workspace.home, workspace.actor) is None

    assert [c["case_id"] for c in listed["cases"]] == [ids["case"], ids["other"]]
    for shown in listed["cases"]:
        from_orm = cases.show_case(workspace, shown["case_id"])
        assert shown == {key: from_orm[key] for key in shown}
        assert shown["pseudonym"] == "Blue-홍길동"
    assert [c["case_id"] for c in listed["open cases"]] == [ids["case"]]
    from_orm = queue.show_item(workspace, ids["item"])
    assert listed["queue"] == [{key: from_orm[key] for key in listed["queue"][0]}]
    assert listed["queue"][0]["url"] == "https://img.host.example/a.jpg"
    assert listed["new items"] == listed["queue"]
    with workspace.session() as session:
        references = session.query(Reference).order_by(Reference.id).all()
        signals = {r.id: sorted(s.kind for s in r.signals) for r in references}
        expected = [(r.id, r.case_id, r.consent, r.added_at.isoformat()) for r in references]
    assert [
        (r["id"], r["case_id"], r["consent"], r["added_at"]) for r in listed["references"]
    ] == expected
    for shown in listed["references"]:
        kinds = sorted(kind for kind, n in shown["signals"].items() for _ in range(n))
        assert kinds == signals[shown["id"]]
        in_bank = shown["signals"].get("pdq", 0) if shown["consent"] == "given" else 0
        assert shown["bank_entries"] == in_bank
    assert [r["consent"] for r in listed["references"]] == ["given", "withdrawn"]
    assert [r["id"] for r in listed["case images"]] == [ids["reference"]]
    assert [h["domain"] for h in listed["hosts"]] == ["board.example.kr", "host.example"]
    assert listed["hosts"][1] == {
        "domain": "host.example",
        "abuse_email": "abuse@host.example",
        "form_url": None,
        "lang": "ko",
    }


def test_its_audit_entries_join_the_chain(populated: tuple[Workspace, dict[str, object]]) -> None:
    workspace, _ = populated
    plain = plain_of(workspace)
    with plain.transaction() as store:
        listings.list_queue(store, status="new")
    plain.close()
    cases.list_cases(workspace)  # the ORM appends after it
    with workspace.store.read_session() as session:
        entries = session.query(audit_entry()).order_by(audit_entry().seq).all()
        checked, problems = audit.verify(session, workspace.home.audit_head_file)
    assert [e.action for e in entries[-2:]] == ["queue.list", "case.list"]
    assert (
        entries[-2].actor == workspace.actor
        and entries[-2].detail == '{"shown": 1, "status": "new"}'
    )
    assert checked == len(entries) and problems == []
    assert audit.read_anchor(workspace.home.audit_head_file).seq == entries[-1].seq

    plain = plain_of(workspace)
    with plain.transaction(write=False):
        assert plain.verify_audit() == (checked, [])
    # An edited row: both walks find it.
    with sqlite3.connect(database_file(workspace.home)) as connection:
        # What an intruder with the file would do (the trigger keeps the application out).
        connection.execute("DROP TRIGGER audit_no_update")
        connection.execute(
            "UPDATE audit SET subject = 'case:other' WHERE seq = ?", (entries[-2].seq,)
        )
    with plain.transaction(write=False):
        plain_checked, plain_problems = plain.verify_audit()
    plain.close()
    with workspace.store.read_session() as session:
        orm_checked, orm_problems = audit.verify(session, workspace.home.audit_head_file)
    assert plain_problems == orm_problems and [p.seq for p in plain_problems] == [entries[-2].seq]
    assert plain_checked == orm_checked


def audit_entry() -> type:
    from ansim.store.tables import AuditEntry

    return AuditEntry


def database_file(home: Home) -> str:
    return home.db_url.removeprefix("sqlite:///")


def test_steps_aside_for_a_home_that_needs_the_full_opening(
    ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    home = workspace.home
    workspace.close()
    assert open_plain(home, "kim") is not None

    odd = tmp_path / "a home #1 100%"
    odd.mkdir()
    (odd / "ansim.db").write_bytes(Path(database_file(home)).read_bytes())
    # Characters a file: URI would read otherwise (sqlite3 opens it by URI, read-write only).
    odd_home = Home(odd, f"sqlite:///{odd / 'ansim.db'}", home.key_file, home.audit_key_file)
    assert open_plain(odd_home, "kim") is not None

    missing = Home(root=tmp_path / "none", db_url=f"sqlite:///{tmp_path / 'none' / 'ansim.db'}")
    assert open_plain(missing, "kim") is None
    assert not (tmp_path / "none" / "ansim.db").exists()  # never created
    assert open_plain(Home(root=home.root, db_url="postgresql://ansim@db/ansim"), "kim") is None

    other_key = tmp_path / "other.key"
    create_key_file(other_key)
    assert open_plain(Home(home.root, home.db_url, key_path=other_key), "kim") is None
    assert open_plain(Home(home.root, home.db_url, key_path=tmp_path / "no.key"), "kim") is None
    no_audit_key = Home(home.root, home.db_url, audit_key_path=tmp_path / "no-audit.key")
    assert open_plain(no_audit_key, "kim") is None

    with sqlite3.connect(database_file(home)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0007_older'")
    assert open_plain(home, "kim") is None
