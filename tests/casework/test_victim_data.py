"""A victim who asks to be forgotten is: after a crawl, a confirmation with a note, a notice
draft and `case close --purge`, a byte search of the whole home finds none of the case's
URLs, digests or notes; its evidence no longer exports; the audit chain still verifies.
On PostgreSQL: the same through the store, and what stays until VACUUM."""

from __future__ import annotations

import hashlib
import json
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from ansim.casework import cases, confirmations, hosts, notice_service, queue, retention
from ansim.casework.errors import CaseworkError
from ansim.casework.notices import Sender
from ansim.casework.report_service import build_report
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import evidence_key_context
from ansim.pipeline import crawl as crawling
from ansim.pipeline import evidence_service, intake, keys
from ansim.pipeline.workspaces import init_workspace
from ansim.store import audit
from ansim.store.db import APPLICATION_GRANTS, alembic_config, make_engine, normalize_url
from ansim.store.error_log import record_error
from ansim.store.tables import (
    AuditEntry,
    AuditPrivate,
    Case,
    Confirmation,
    CrawlRun,
    CrawlUrl,
    Evidence,
    ScannedItem,
    Signal,
    Takedown,
)
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy
from tests.crawl_site import CrawlSite
from tests.localserve import LocalServer

QUICK = dict(allow_loopback=True, min_delay_s=0.0, hash_processes=1, max_depth=10)
SENDER = Sender("Test Support Center", "takedown@center.example")
CONFIRM_NOTE = "seen it: same tattoo, victim confirmed by phone"
SERVICE_NOTE = "accompanied to the police station"
PSEUDONYM = "Blue-Heron-7"
CONTACT = "010-4242-9191"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[CrawlSite]:
    generated = CrawlSite(tmp_path / "site", pages=12, per_page=2, planted=2)
    with LocalServer(generated.app) as server:
        generated.server = server
        yield generated


@pytest.fixture
def workspace(backend_workspace: Workspace) -> Workspace:
    return backend_workspace


def crawl_found_case(workspace: Workspace, site: CrawlSite) -> tuple[str, list[int]]:
    """A case whose two reference photos a crawl finds, both confirmed with a note and
    listed in a drafted notice; returns (case id, queue item ids)."""
    case_id = cases.open_case(workspace, "digital-sex-crime", pseudonym=PSEUDONYM, contact=CONTACT)
    cases.add_service(workspace, case_id, "legal", SERVICE_NOTE)
    added = intake.add_reference_files(workspace, case_id, site.reference_files)
    assert all(a.error is None for a in added)
    seed = site.server.url("/p/0.html")
    crawling.run_crawl(workspace, crawling.CrawlOptions(seeds=[seed], **QUICK))
    items = [i["id"] for i in queue.list_queue(workspace, case_id=case_id)]
    assert len(items) == 2
    for item in items:
        confirmations.confirm(workspace, item, note=CONFIRM_NOTE)
    hosts.set_host(workspace, "127.0.0.1", "abuse@loopback.example")
    drafted = notice_service.draft(workspace, SENDER)
    assert len(drafted.files) == 1
    return case_id, items


def victim_strings(workspace: Workspace, site: CrawlSite, items: list[int]) -> dict[str, bytes]:
    """Everything that would identify the victim's material, as it could sit in a file."""
    with workspace.store.session() as session:
        takedowns = [session.get(Takedown, i) for i in items]
        evidence = list(session.execute(select(Evidence)).scalars())
        pages = {e.page_url for e in evidence if e.page_url}
    urls = {t.location for t in takedowns} | pages
    found: dict[str, bytes] = {}
    for url in urls:
        found[url] = url.encode()
        found[f"path of {url}"] = url.split(site.server.base_url)[1].encode()
        found[f"sha256 of {url}"] = hashlib.sha256(url.encode()).hexdigest().encode()
    for path in site.planted_paths:
        body = site.images[int(path.split("/")[2].split(".")[0])]
        digest = hashlib.sha256(body)
        found[f"sha256 of {path}"] = digest.hexdigest().encode()
        found[f"raw sha256 of {path}"] = digest.digest()
    for reference in site.reference_files:
        found[f"sha256 of {reference.name}"] = (
            hashlib.sha256(reference.read_bytes()).hexdigest().encode()
        )
    with workspace.store.read_session() as session:  # the fingerprints, as the indexes hold them
        takedown_items = [t.item_id for t in session.scalars(select(Takedown))]
        pdq = session.scalars(
            select(Signal.value).where(
                Signal.kind == "pdq",
                (Signal.item_id.in_(takedown_items)) | (Signal.reference_id.is_not(None)),
            )
        ).all()
    assert len(pdq) >= 4  # two references, two found copies
    for value in pdq:
        found[f"pdq {value}"] = value.encode()
        found[f"raw pdq {value}"] = bytes.fromhex(value)
    for name, value in {
        "confirmation note": CONFIRM_NOTE,
        "service note": SERVICE_NOTE,
        "pseudonym": PSEUDONYM,
        "contact": CONTACT,
    }.items():
        found[name] = value.encode()
    return found


def home_bytes(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_purge_leaves_nothing_in_the_home(
    site: CrawlSite, workspace: Workspace, tmp_path: Path
) -> None:
    if workspace.store.engine.dialect.name != "sqlite":
        pytest.skip("the byte search reads the SQLite files; PostgreSQL: see the test below")
    case_id, items = crawl_found_case(workspace, site)
    needles = victim_strings(workspace, site, items)
    with workspace.store.session() as session:
        evidence_ids = list(session.execute(select(Evidence.id)).scalars())
    assert len(evidence_ids) == 2
    # Before the purge the search does find them (it is able to), evidence exports.
    before = home_bytes(workspace.home.root)
    everything_before = b"".join(before.values())
    assert all(needles[name] in everything_before for name in needles if name.startswith("http"))
    evidence_service.export_evidence(workspace, evidence_ids[0], tmp_path / "export")
    victim_url = next(name for name in needles if name.startswith("http"))
    logged = record_error(
        workspace.home.log_dir, workspace.home.key_file, ValueError(f"bad page {victim_url}")
    )

    shown = retention.close_case(workspace, case_id, purge=True)
    assert "warning" not in shown  # the WAL was checkpointed
    deleted = shown["deleted"]
    assert deleted["evidence_bundles"] == 2 and deleted["evidence_files"] == 4
    assert deleted["notice_files"] == 2 and deleted["confirmation_notes"] == 2
    assert deleted["frontier_rows"] >= 4 and deleted["audit_details"] >= 3
    assert deleted["error_log"] is True and not logged.exists()

    leftovers = {
        f"{name} in {path.relative_to(workspace.home.root)}"
        for path, data in home_bytes(workspace.home.root).items()
        for name, needle in needles.items()
        if needle in data
    }
    assert leftovers == set()
    assert not list(workspace.home.evidence_dir.iterdir())
    for evidence_id in evidence_ids:
        with pytest.raises(CaseworkError, match="unknown evidence id"):
            evidence_service.export_evidence(workspace, evidence_id, tmp_path / "again")
    with workspace.store.read_session() as session:
        checked, problems = audit.verify(session, workspace.home.audit_head_file)
    assert problems == [] and checked > 10


def test_purge_through_the_store(site: CrawlSite, workspace: Workspace) -> None:
    """Both backends: no row keeps the case's URLs, digests, notes or evidence keys."""
    case_id, items = crawl_found_case(workspace, site)
    needles = victim_strings(workspace, site, items)
    retention.close_case(workspace, case_id, purge=True)
    with workspace.store.read_session() as session:
        assert session.execute(select(func.count(Evidence.id))).scalar() == 0
        assert (
            session.execute(
                select(func.count(AuditPrivate.seq)).where(AuditPrivate.case_id == case_id)
            ).scalar()
            == 0
        )
        notes = session.execute(
            select(Confirmation.note, Confirmation.note_encrypted).where(
                Confirmation.takedown_id.in_(items)
            )
        ).all()
        assert notes and all(n == (None, None) for n in notes)
        frontier = session.execute(select(CrawlUrl.url, CrawlUrl.final_url, CrawlUrl.sha256))
        kept_text = json.dumps([list(r) for r in frontier]).encode()
        kept_text += json.dumps(
            [list(r) for r in session.execute(select(CrawlRun.summary, CrawlRun.options))]
        ).encode()
        kept_text += json.dumps(
            [list(r) for r in session.execute(select(ScannedItem.location, ScannedItem.sha256))]
        ).encode()
        kept_text += json.dumps(
            [list(r) for r in session.execute(select(Signal.value).where(Signal.kind == "sha256"))]
        ).encode()
        for name, needle in needles.items():
            if not name.startswith("raw"):
                assert needle not in kept_text, name
        checked, problems = audit.verify(session, workspace.home.audit_head_file)
        assert problems == []


def test_closed_or_purged_case_refuses_new_references(
    workspace: Workspace, site: CrawlSite, tmp_path: Path
) -> None:
    closed = cases.open_case(workspace, "stalking")
    retention.close_case(workspace, closed)
    with pytest.raises(CaseworkError, match="is closed; it takes no new references"):
        intake.add_reference_files(workspace, closed, site.reference_files[:1])
    purged = cases.open_case(workspace, "stalking")
    retention.close_case(workspace, purged, purge=True)
    with pytest.raises(CaseworkError, match="was purged"):
        hash_list = tmp_path / "hashes.txt"
        hash_list.write_text("a" * 64 + "\n")
        intake.import_hash_list(workspace, purged, hash_list, "pdq")


def test_postgresql_keeps_dead_row_versions_until_vacuum(
    site: CrawlSite, workspace: Workspace
) -> None:
    """What a purge leaves on PostgreSQL: dead versions of the rows it changed, in the
    table files, until VACUUM; the purge says so in its result."""
    if workspace.store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    case_id, _ = crawl_found_case(workspace, site)
    tables = ("crawl_url", "evidence", "scanned_item", "confirmation", "audit_private")
    with workspace.store.engine.begin() as connection:  # no autovacuum racing the check
        for table in tables:
            connection.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    shown = retention.close_case(workspace, case_id, purge=True)
    assert "VACUUM" in shown["until_vacuum"]

    def dead_rows() -> int:
        with workspace.store.engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_force_next_flush()"))
            return connection.execute(
                text("SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE relname = ANY(:names)"),
                {"names": list(tables)},
            ).scalar()

    # The purge's connections report their counts to the statistics a moment later.
    deadline = time.monotonic() + 10
    while not dead_rows() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dead_rows() > 0

    def files() -> list[int]:
        with workspace.store.engine.connect() as connection:
            return [
                connection.execute(text("SELECT pg_relation_filenode(:t)"), {"t": t}).scalar()
                for t in tables
            ]

    before = files()
    with workspace.store.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        for table in tables:
            connection.execute(text(f"VACUUM FULL {table}"))
    # VACUUM FULL wrote every table anew and dropped the files holding the dead versions.
    assert all(old != new for old, new in zip(before, files(), strict=True))


def test_notice_and_export_files_are_private(
    site: CrawlSite, workspace: Workspace, tmp_path: Path
) -> None:
    leftover = workspace.home.work_dir / "crawl-killed" / "fetched-body.bin"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"media of a run killed with -9")
    crawl_found_case(workspace, site)
    assert not leftover.exists()
    notice_files = [p for p in workspace.home.notices_dir.rglob("*") if p.is_file()]
    assert notice_files
    for path in notice_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    with workspace.store.read_session() as session:
        evidence_id = session.execute(select(Evidence.id)).scalars().first()
    exported = evidence_service.export_evidence(workspace, evidence_id, tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    for name in exported["files"]:
        assert stat.S_IMODE(Path(name).stat().st_mode) == 0o600
    for path in workspace.home.evidence_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(workspace.home.work_dir.stat().st_mode) == 0o700
    assert list(workspace.home.work_dir.iterdir()) == []


def test_audit_rows_cannot_be_updated_or_deleted(workspace: Workspace) -> None:
    """The application's own connection is refused UPDATE and DELETE on audit rows (a
    trigger on both backends; on PostgreSQL also no UPDATE/DELETE grant to PUBLIC)."""
    cases.open_case(workspace, "other")
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"), workspace.store.session() as session:
            session.execute(text(statement))
    with workspace.store.read_session() as session:
        assert session.execute(select(func.count()).select_from(AuditEntry)).scalar() == 1


def test_postgresql_application_role_has_no_update_or_delete_grant(workspace: Workspace) -> None:
    """A role given what the application needs (the documented grants) cannot change the
    log even with the trigger gone: the grants alone refuse it."""
    if workspace.store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    cases.open_case(workspace, "other")
    role = f"ansim_app_{uuid.uuid4().hex[:8]}"
    engine = workspace.store.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
        admin.execute(text(f"CREATE ROLE {role}"))
        admin.execute(text(APPLICATION_GRANTS.format(role=role)))
        admin.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_append_only"))
    try:
        for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
            with engine.connect() as connection:
                connection.execute(text(f"SET ROLE {role}"))
                with pytest.raises(DBAPIError, match="permission denied"):
                    connection.execute(text(statement))
                connection.rollback()
                connection.execute(text("RESET ROLE"))
                connection.commit()
    finally:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.execute(text("ALTER TABLE audit ENABLE TRIGGER audit_append_only"))
            admin.execute(text(f"DROP OWNED BY {role}"))
            admin.execute(text(f"DROP ROLE {role}"))


def test_reads_are_audited(workspace: Workspace, tmp_path: Path) -> None:
    case_id, _, reference = open_case_with_reference(workspace, tmp_path, seed=3)
    [item] = found_at(
        workspace, reposted_copy(reference, tmp_path / "c.jpg"), "https://h.example/1"
    )
    reader = as_analyst(workspace, "auditor-lee")
    cases.list_cases(reader)
    cases.show_case(reader, case_id)
    queue.list_queue(reader, case_id=case_id)
    queue.show_item(reader, item)
    build_report(reader, case_id=case_id)
    with workspace.store.read_session() as session:
        read = session.execute(
            select(AuditEntry.action, AuditEntry.subject)
            .where(AuditEntry.actor == "auditor-lee")
            .order_by(AuditEntry.seq)
        ).all()
    assert [tuple(r) for r in read] == [
        ("case.list", "case:*"),
        ("case.show", case_id),
        ("queue.list", f"case:{case_id}"),
        ("queue.show", f"takedown:{item}"),
        ("report.read", f"case:{case_id}"),
    ]


def test_swapped_evidence_does_not_verify(
    site: CrawlSite, workspace: Workspace, tmp_path: Path
) -> None:
    """Export checks the bundle against its row: files (and keys) swapped between two
    bundles, or a row whose recorded SHA-256 differs, are refused."""
    crawl_found_case(workspace, site)
    with workspace.store.session() as session:
        first = session.execute(select(Evidence).order_by(Evidence.id)).scalars().first()
        recorded, first.warc_sha256 = first.warc_sha256, "0" * 64
    with pytest.raises(CaseworkError, match="not the one recorded"):
        evidence_service.export_evidence(workspace, first.id, tmp_path / "c")
    with workspace.store.session() as session:
        first, second = session.execute(select(Evidence).order_by(Evidence.id)).scalars()
        first.warc_sha256 = recorded
        first.data_key_encrypted, second.data_key_encrypted = (
            second.data_key_encrypted,
            first.data_key_encrypted,
        )
        ids, bundles = (first.id, second.id), (first.bundle_id, second.bundle_id)
    root = workspace.home.evidence_dir
    for suffix in (".warc.gz.sealed", ".manifest.json.sealed"):
        a, b = root / f"{bundles[0]}{suffix}", root / f"{bundles[1]}{suffix}"
        a.rename(root / "swap")
        b.rename(a)
        (root / "swap").rename(b)
    with pytest.raises(CaseworkError):  # the key is bound to its bundle id
        evidence_service.export_evidence(workspace, ids[0], tmp_path / "a")
    with workspace.store.session() as session:  # a forger who also rewraps the keys
        first, second = session.get(Evidence, ids[0]), session.get(Evidence, ids[1])
        key_of_second = workspace.cipher.decrypt(
            first.data_key_encrypted, evidence_key_context(bundles[1])
        )
        first.data_key_encrypted = workspace.cipher.encrypt(
            key_of_second, evidence_key_context(bundles[0])
        )
    with pytest.raises(CaseworkError, match="hold another bundle"):
        evidence_service.export_evidence(workspace, ids[0], tmp_path / "b")


def test_an_existing_home_upgrades_with_its_unkeyed_chain(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home from before 0004: its unkeyed chain still verifies, new entries are keyed,
    editing an old entry is still caught, and `key rotate` encrypts its plaintext."""
    url = normalize_url(db_url)
    command.upgrade(alembic_config(url), "0003_crawler")
    engine = make_engine(url)
    moment = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    previous = audit.GENESIS_HASH
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO support_case (id, case_type, status, pseudonym, created_at) "
                "VALUES ('C-2026-0001', 'stalking', 'open', 'Old-Plain-Name', :at)"
            ),
            {"at": moment},
        )
        for seq in (1, 2):
            digest = audit.entry_hash(seq, moment, "kim", "case.open", "C", "{}", previous, None)
            connection.execute(
                text(
                    "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, "
                    "entry_hash) VALUES (:seq, :at, 'kim', 'case.open', 'C', '{}', :prev, :hash)"
                ),
                {"seq": seq, "at": moment, "prev": previous, "hash": digest},
            )
            previous = digest
        connection.execute(
            text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 2, :hash)"),
            {"hash": previous},
        )
    engine.dispose()
    home = tmp_path / "old-home"
    home.mkdir()
    (home / "audit.head").write_text(f"2 {previous}\n")  # the pre-0004 anchor format
    monkeypatch.setenv("ANSIM_HOME", str(home))
    monkeypatch.setenv("ANSIM_DB_URL", db_url)
    monkeypatch.delenv("ANSIM_KEY_FILE", raising=False)
    workspace, _ = init_workspace()
    try:

        def chain_problems() -> list[str]:
            with workspace.store.read_session() as session:
                _, found = audit.verify(session, workspace.home.audit_head_file)
            return [p.message for p in found]

        assert chain_problems() == []
        cases.open_case(workspace, "other")
        assert chain_problems() == []
        assert cases.show_case(workspace, "C-2026-0001")["pseudonym"] == "Old-Plain-Name"
        keys.rotate(workspace)
        with workspace.store.read_session() as session:
            old = session.get(Case, "C-2026-0001")
            assert old.pseudonym is None and old.pseudonym_encrypted is not None
        assert cases.show_case(workspace, "C-2026-0001")["pseudonym"] == "Old-Plain-Name"
        sqlite = workspace.store.engine.dialect.name == "sqlite"
        with workspace.store.session() as session:
            if sqlite:
                session.execute(text("DROP TRIGGER audit_no_update"))
            else:
                session.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_append_only"))
            session.execute(text("UPDATE audit SET actor = 'lee' WHERE seq = 1"))
        assert any("row edited" in p for p in chain_problems())
    finally:
        workspace.close()
