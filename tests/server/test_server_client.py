"""The command line as a client: `ansim login` against a live server, queue decisions made
as the signed-in account (a two-person rule counts accounts), supervisor-only policy,
refusal of commands that do not go through the server yet, and `ansim logout`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansim.casework import confirmations, hosts
from ansim.store import audit
from ansim.store.tables import AuditEntry, AuditHead, Notice, Takedown
from sqlalchemy import select, update

from tests.casework.test_casework_workflow import media_server  # noqa: F401 - fixture
from tests.casework_fixtures import reposted_copy
from tests.helpers import photo_like
from tests.server_fixtures import PASSWORD, LiveServer, ready_app, served_home

ANSIM = str(Path(sys.executable).parent / "ansim")


def client_runner(server_url: str, tmp_path: Path):  # noqa: ANN201
    """`ansim(person, *args)`: the CLI as `person`, signed in to `server_url` (their own
    client file); asserts the exit code and returns what it printed."""

    def ansim(person: str, *args: str, stdin: str = "", expect: int = 0) -> str:
        env = {
            **os.environ,
            "ANSIM_SERVER": server_url,
            "ANSIM_CLIENT_FILE": str(tmp_path / f"{person}.json"),
            "ANSIM_ANALYST": "somebody-else",
            "ANSIM_HOME": str(tmp_path / "nowhere"),
            "ANSIM_LANG": "en",
        }
        done = subprocess.run(
            [ANSIM, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == expect, done.stdout + done.stderr
        return done.stdout + done.stderr

    return ansim


@pytest.fixture
def server_home(ansim_home, tmp_path):  # noqa: ANN001, ANN201
    with served_home(tmp_path) as home:
        yield home


def test_cli_through_the_server(server_home, tmp_path) -> None:  # noqa: ANN001
    workspace = server_home.workspace
    confirmations.set_rule(workspace, "digital-sex-crime", 2)
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)

        assert "signed in" in ansim("alice", "login", "--name", "alice", "--password-stdin",
                                    stdin=PASSWORD + "\n")  # fmt: skip
        assert stat.S_IMODE((tmp_path / "alice.json").stat().st_mode) == 0o600
        ansim("bob", "login", "--name", "bob", "--password-stdin", stdin="wrong password\n",
              expect=2)  # fmt: skip
        ansim("bob", "login", "--name", "bob", "--password-stdin", stdin=PASSWORD + "\n")
        item = str(server_home.item_id)
        first = json.loads(ansim("alice", "queue", "confirm", item, "--json"))
        assert first["confirmations"] == ["alice"] and first["status"] == "new"
        assert "refused" in ansim("alice", "queue", "confirm", item, expect=2)
        assert "confirmed" in ansim("bob", "queue", "confirm", item)
        refused = ansim("alice", "queue", "policy", "stalking", "--confirmations", "1", expect=2)
        assert "supervisor" in refused
        assert "does not go through the server" in ansim("alice", "crawl", "x", expect=2)
        ansim("alice", "logout")
        assert not (tmp_path / "alice.json").exists()
    with workspace.store.session() as session:
        assert session.get(Takedown, server_home.item_id).status == "confirmed"
        actors = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "queue.confirmation")
        ).scalars()
        assert sorted(actors) == ["alice", "bob"]
        revoked = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "token.revoke")
        ).scalars()
        assert list(revoked) == ["alice"]


def test_cases_report_and_audit_through_the_server(server_home, tmp_path) -> None:  # noqa: ANN001
    """case list/show/open, report and audit verify/list act through the server as the
    signed-in account: a supervisor may, an analyst is refused by the server (exit 2)."""
    workspace = server_home.workspace
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)

        for person in ("sue", "alice"):
            ansim(person, "login", "--name", person, "--password-stdin", stdin=PASSWORD + "\n")
        opened = json.loads(ansim("sue", "case", "open", "--type", "stalking", "--pseudonym",
                                  "Green", "--contact-file", "-", "--json",
                                  stdin="010-9999-0000\n"))  # fmt: skip
        case_id = opened["case_id"]
        listed = json.loads(ansim("sue", "case", "list", "--json"))
        assert case_id in {c["case_id"] for c in listed} and server_home.case_id in {
            c["case_id"] for c in listed
        }
        assert case_id in ansim("sue", "case", "list")  # the embedded table, from the server
        shown = json.loads(ansim("sue", "case", "show", server_home.case_id, "--json"))
        assert "contact" not in shown and shown["has_contact"] and len(shown["reference_list"]) == 1
        revealed = json.loads(ansim("sue", "case", "show", case_id, "--reveal", "--json"))
        assert revealed["contact"] == "010-9999-0000" and revealed["pseudonym"] == "Green"
        assert "supervisor" in ansim("alice", "case", "list", expect=2)
        assert "supervisor" in ansim("alice", "case", "show", case_id, "--reveal", expect=2)

        report = json.loads(ansim("sue", "report", "--since", "2020-01-01", "--json"))
        assert report["items"] == 2 and report["cases"] == 2
        assert "Takedowns detected" in ansim("sue", "report", "--since", "2020-01-01")
        assert "not a date" in ansim("sue", "report", "--since", "2026-13-01", expect=2)
        assert "supervisor" in ansim("alice", "report", expect=2)

        verdict = json.loads(ansim("sue", "audit", "verify", "--json"))
        assert verdict["ok"] is True and verdict["entries"] > 5
        assert "audit chain intact" in ansim("sue", "audit", "verify")
        entries = json.loads(ansim("sue", "audit", "list", "--limit", "5", "--json"))
        assert len(entries) == 5 and entries[0]["seq"] > entries[-1]["seq"]
        assert "supervisor" in ansim("alice", "audit", "list", expect=2)
        assert "does not go through the server" in ansim("sue", "crawl", "x", expect=2)

        # References: uploaded, fingerprinted on the server, listed; an analyst is refused.
        photo = tmp_path / "uploads" / "reported-new.png"
        photo.parent.mkdir()
        photo_like(photo, seed=31)
        added = json.loads(ansim("sue", "ref", "add", case_id, str(photo.parent), "--json"))
        assert [(a["path"], a["modality"], a["error"]) for a in added] == [
            ("reported-new.png", "image", None)
        ]
        refs = json.loads(ansim("sue", "ref", "list", "--case", case_id, "--json"))
        assert [(r["id"], r["label"]) for r in refs] == [
            (added[0]["reference_id"], "reported-new.png")
        ]
        assert refs[0]["bank_entries"] > 0  # in the server's banks at once
        assert "reported-new.png" in ansim("sue", "ref", "list")
        missing = ansim("sue", "ref", "add", case_id, str(tmp_path / "gone.png"), expect=1)
        assert "no such" in missing and "0 added, 1 failed" in missing
        assert "supervisor" in ansim("alice", "ref", "add", case_id, str(photo), expect=2)
        assert "unknown case" in ansim("sue", "ref", "add", "C-1999-0001", str(photo), expect=2)
        assert not list(Path("/dev/shm").glob("ansim-upload-*"))  # the upload is gone

        # Scans: each file uploaded, matched on the server, queued as the analyst.
        collected = tmp_path / "collected"
        collected.mkdir()
        reposted_copy(photo, collected / "repost.jpg")
        photo_like(collected / "unrelated.png", seed=77)
        dry = json.loads(ansim("alice", "scan", str(collected), "--dry-run", "--json"))
        assert dry["scanned"] == 2 and [m["takedown_id"] for m in dry["matches"]] == [None]
        scanned = json.loads(ansim("alice", "scan", str(collected), "--json"))
        [match] = scanned["matches"]
        assert match["path"] == str(collected / "repost.jpg") and match["case_id"] == case_id
        assert match["takedown_id"] and match["reference_id"] == added[0]["reference_id"]
        assert "1 matches" in ansim("alice", "scan", str(collected / "repost.jpg"))
        assert not list(Path("/dev/shm").glob("ansim-upload-*"))

        # Evidence export: decrypted on the server, written here 0600 in a 0700 folder.
        item = json.loads(ansim("sue", "queue", "show", str(server_home.item_id), "--json"))
        [evidence_id] = [e["id"] for e in item["evidence"]]
        handover = tmp_path / "handover" / "C"
        exported = json.loads(ansim("sue", "evidence", "export", str(evidence_id), str(handover),
                                    "--json"))  # fmt: skip
        assert stat.S_IMODE(handover.stat().st_mode) == 0o700
        files = sorted(Path(f) for f in exported["files"])
        assert [f.parent for f in files] == [handover, handover] and len(files) == 2
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        warc = next(f for f in files if f.name.endswith(".warc.gz"))
        assert hashlib.sha256(warc.read_bytes()).hexdigest() == exported["warc_sha256"]
        assert "supervisor" in ansim("alice", "evidence", "export", str(evidence_id),
                                     str(tmp_path / "no"), expect=2)  # fmt: skip
        assert not (tmp_path / "no").exists()
        assert not list(Path("/dev/shm").glob("ansim-export-*"))

        # Notices: drafted on the server as the signed-in analyst, kept in its store.
        ansim("alice", "queue", "confirm", str(server_home.item_id))
        skipped = json.loads(ansim("alice", "notice", "draft", "--sender", "t@center.example",
                                   "--json", expect=1))  # fmt: skip
        assert [s["id"] for s in skipped["skipped"]] == [server_home.item_id]  # no host contact
        hosts.set_host(workspace, "images.example", abuse_email="abuse@images.example")
        drafted = json.loads(ansim("alice", "notice", "draft", "--sender", "t@center.example",
                                   "--json"))  # fmt: skip
        [notice] = drafted["notices"]
        assert notice["takedowns"] == [server_home.item_id]
        [eml] = [Path(f) for f in drafted["files"] if f.endswith(".eml")]  # in the server's home
        assert eml.is_relative_to(workspace.home.root) and stat.S_IMODE(eml.stat().st_mode) == 0o600
        listed = json.loads(ansim("alice", "notice", "list", "--json"))
        assert [n["ref"] for n in listed] == [notice["ref"]]
        assert notice["ref"] in ansim("alice", "notice", "list")
        assert "--out" in ansim("alice", "notice", "draft", "--out", str(tmp_path), expect=2)
    with workspace.store.session() as session:
        opened_by = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "case.open")
        ).scalars()
        assert "sue" in list(opened_by)
        revealed_by = session.execute(
            select(AuditEntry.actor).where(
                AuditEntry.action == "case.reveal_contact", AuditEntry.subject == case_id
            )
        ).scalars()
        assert list(revealed_by) == ["sue"]


def test_services_closing_withdrawal_and_notices_through_the_server(
    server_home,
    tmp_path,
    smtp_server,  # noqa: ANN001
) -> None:
    """case service/close, ref withdraw and notice show/send/settle act through the server
    as the signed-in account: the server's role checks refuse an analyst where a supervisor
    is needed, and the audit names the account, not the machine's analyst."""
    smtp_url, smtp = smtp_server
    workspace = server_home.workspace
    workspace.settings = dataclasses.replace(workspace.settings, smtp_url=smtp_url)
    hosts.set_host(workspace, "images.example", abuse_email="abuse@images.example")
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)

        for person in ("sue", "alice"):
            ansim(person, "login", "--name", person, "--password-stdin", stdin=PASSWORD + "\n")

        # Notices: shown, a send interrupted earlier is reported stuck and settled by the
        # analyst who checked, then sent by the server's SMTP settings.
        ansim("alice", "queue", "confirm", str(server_home.item_id))
        drafted = json.loads(ansim("alice", "notice", "draft", "--sender", "t@center.example",
                                   "--json"))  # fmt: skip
        [ref] = [n["ref"] for n in drafted["notices"]]
        shown = json.loads(ansim("alice", "notice", "show", ref, "--json"))
        assert (shown["status"], shown["takedowns"]) == ("drafted", [server_home.item_id])
        assert "abuse@images.example" in ansim("alice", "notice", "show", ref)
        assert "unknown notice" in ansim("alice", "notice", "show", "N-1999-00001", expect=2)
        with workspace.store.session() as session:
            session.execute(update(Notice).where(Notice.ref == ref).values(status="sending"))
        stuck = json.loads(ansim("alice", "notice", "send", "--json", expect=1))
        assert stuck["stuck_sending"] == [ref] and not stuck["sent"] and not smtp.messages
        settled = json.loads(ansim("alice", "notice", "settle", ref, "--not-delivered", "--json"))
        assert settled["status"] == "failed"
        assert "only a notice stuck" in ansim("alice", "notice", "settle", ref, "--delivered",
                                              expect=2)  # fmt: skip
        assert "--smtp" in ansim("alice", "notice", "send", "--smtp", smtp_url, expect=2)
        sent = json.loads(ansim("alice", "notice", "send", "--json"))
        assert [n["ref"] for n in sent["sent"]] == [ref] and len(smtp.messages) == 1
        assert smtp.messages[0][1] == ["abuse@images.example"]

        # A service, a withdrawal and a purge: a supervisor's, refused to an analyst.
        case_id = server_home.case_id
        assert "supervisor" in ansim("alice", "case", "service", case_id, "--kind", "legal",
                                     "--note-file", "-", stdin="x\n", expect=2)  # fmt: skip
        service = json.loads(ansim("sue", "case", "service", case_id, "--kind", "legal",
                                   "--note-file", "-", "--json",
                                   stdin="filed a complaint\n"))  # fmt: skip
        assert service["case_id"] == case_id and service["service_id"] > 0
        assert "must be one of" in ansim("sue", "case", "service", case_id, "--kind", "nope",
                                         "--note-file", "-", stdin="x\n", expect=2)  # fmt: skip
        [reference] = json.loads(ansim("sue", "ref", "list", "--case", case_id, "--json"))
        assert "supervisor" in ansim("alice", "ref", "withdraw", str(reference["id"]),
                                     "--reason-file", "-", stdin="x\n", expect=2)  # fmt: skip
        withdrawn = json.loads(ansim("sue", "ref", "withdraw", str(reference["id"]),
                                     "--reason-file", "-", "--json",
                                     stdin="the victim asked\n"))  # fmt: skip
        assert withdrawn["signals_removed"] > 0
        again = ansim("sue", "ref", "withdraw", str(reference["id"]), "--reason-file", "-",
                      stdin="x\n", expect=2)  # fmt: skip
        assert "already withdrawn" in again
        [after] = json.loads(ansim("sue", "ref", "list", "--case", case_id, "--json"))
        assert after["bank_entries"] == 0
        assert "supervisor" in ansim("alice", "case", "close", case_id, expect=2)
        assert "closed" in ansim("sue", "case", "close", case_id)
        purged = json.loads(ansim("sue", "case", "close", case_id, "--purge", "--yes", "--json"))
        assert purged["purged"] and purged["deleted"]["contact"] is True
        assert "already purged" in ansim("sue", "case", "close", case_id, "--purge", "--yes",
                                         expect=2)  # fmt: skip
    with workspace.store.session() as session:
        actors = set(
            session.execute(
                select(AuditEntry.action, AuditEntry.actor).where(
                    AuditEntry.action.in_(
                        ["notice.settle", "notice.sent", "case.service", "ref.withdraw",
                         "case.close", "case.purge"]
                    )
                )
            ).all()
        )  # fmt: skip
        assert actors == {
            ("notice.settle", "alice"), ("notice.sent", "alice"), ("case.service", "sue"),
            ("ref.withdraw", "sue"), ("case.close", "sue"), ("case.purge", "sue"),
        }  # fmt: skip


def test_url_scans_through_the_server(server_home, tmp_path, media_server) -> None:  # noqa: ANN001, F811
    """`ansim scan URL` through the server: the server fetches with its own guards (its
    loopback setting, never the client's), queues the match as the signed-in analyst."""
    base, files = media_server
    workspace = server_home.workspace
    repost = reposted_copy(server_home.reference, tmp_path / "repost.jpg")
    files["/repost.jpg"] = (200, repost.read_bytes(), "image/jpeg")
    url = f"{base}/repost.jpg"
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)
        ansim("alice", "login", "--name", "alice", "--password-stdin", stdin=PASSWORD + "\n")
        guarded = json.loads(ansim("alice", "scan", url, "--json", expect=1))
        assert guarded["matches"] == 0 and guarded["outcomes"] == {"blocked_address": 1}
        workspace.settings = dataclasses.replace(workspace.settings, allow_loopback=True)
        scanned = json.loads(ansim("alice", "scan", url, "--json"))
        [match] = scanned["match_list"]
        assert match["url"] == url and match["case_id"] == server_home.case_id
        assert "--dry-run" in ansim("alice", "scan", url, "--dry-run", expect=2)
        assert f"match {url}" in ansim("alice", "scan", url)  # the embedded summary
    with workspace.store.session() as session:
        takedown = session.get(Takedown, match["takedown_id"])
        assert (takedown.case_id, takedown.status) == (server_home.case_id, "new")
        queued_by = session.execute(
            select(AuditEntry.actor).where(
                AuditEntry.action == "queue.new",
                AuditEntry.subject == f"takedown:{match['takedown_id']}",
            )
        ).scalars()
        assert list(queued_by) == ["alice"]


def test_hash_lists_through_the_server(server_home, tmp_path) -> None:  # noqa: ANN001
    """`ref import` uploads a hash list to the server, `ref export` streams the hashes back
    into a 0600 file or stdout: a supervisor's commands, refused to an analyst."""
    workspace = server_home.workspace
    hashes = [hashlib.sha256(f"shared-{n}".encode()).hexdigest() for n in range(3)]
    shared = tmp_path / "shared.csv"
    shared.write_text(f"{hashes[0]},first\n{hashes[1]}\nnot-a-hash\n")
    video = tmp_path / "videos" / "clip.txt"
    video.parent.mkdir()
    video.write_text("".join(f"{n},100,{hashes[2]},{n}.000\n" for n in range(3)))
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)
        for person in ("sue", "alice"):
            ansim(person, "login", "--name", person, "--password-stdin", stdin=PASSWORD + "\n")
        case_id = server_home.case_id
        assert "supervisor" in ansim("alice", "ref", "import", case_id, str(shared), expect=2)
        report = json.loads(ansim("sue", "ref", "import", case_id, str(shared), "--json",
                                  expect=1))  # fmt: skip
        assert (report["imported"], report["rejected"]) == (2, 1)
        assert [r["line"] for r in report["rejections"]] == [3]
        first, last = report["reference_ids"]
        assert "cannot read" in ansim("sue", "ref", "import", case_id, str(tmp_path / "no.csv"),
                                      expect=2)  # fmt: skip
        videos = json.loads(ansim("sue", "ref", "import", case_id, str(video.parent),
                                  "--format", "vpdq", "--json"))  # fmt: skip
        assert [(v["path"], v["modality"], v["error"]) for v in videos] == [
            (str(video), "video", None)
        ]
        assert not list(Path("/dev/shm").glob("ansim-upload-*"))

        out = tmp_path / "exported.csv"
        assert "supervisor" in ansim("alice", "ref", "export", "--out", str(out), expect=2)
        assert not out.exists()
        assert "wrote" in ansim("sue", "ref", "export", "--case", case_id, "--out", str(out))
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        lines = out.read_text().splitlines()
        assert {f"{hashes[0]},ref-{first}", f"{hashes[1]},ref-{last}"} <= set(lines)
        streamed = ansim("sue", "ref", "export").splitlines()
        assert set(lines) <= set(streamed)
        exported_videos = ansim("sue", "ref", "export", "--format", "vpdq", "--case", case_id)
        assert hashes[2] in exported_videos
        assert "unknown case" in ansim("sue", "ref", "export", "--case", "C-1999-0001", expect=2)
        assert "format" in ansim("sue", "ref", "export", "--format", "sha1", expect=2)
    with workspace.store.session() as session:
        actors = set(
            session.execute(
                select(AuditEntry.action, AuditEntry.actor).where(
                    AuditEntry.action.in_(["ref.import", "ref.export"])
                )
            ).all()
        )
        assert actors == {("ref.import", "sue"), ("ref.export", "sue")}


def test_recheck_anchor_and_item_view_through_the_server(server_home, tmp_path) -> None:  # noqa: ANN001
    """queue recheck runs on the server as the analyst; audit anchor writes the server's
    head into a 0600 file here (supervisors only); queue show prints labelled fields."""
    workspace = server_home.workspace
    with LiveServer(ready_app(workspace)) as server:
        ansim = client_runner(server.url, tmp_path)
        for person in ("sue", "alice"):
            ansim(person, "login", "--name", person, "--password-stdin", stdin=PASSWORD + "\n")

        shown = ansim("alice", "queue", "show", str(server_home.item_id))
        assert "status" in shown and "{'" not in shown  # fields, not a Python repr

        report = json.loads(ansim("alice", "queue", "recheck", "--json"))
        assert report["checked"] == [] and report["unreachable"] == 0  # nothing notified yet
        assert "0 gone" in ansim("alice", "queue", "recheck")

        anchor_file = tmp_path / "anchor.txt"
        assert "supervisor" in ansim("alice", "audit", "anchor", "--out", str(anchor_file),
                                     expect=2)  # fmt: skip
        anchored = json.loads(ansim("sue", "audit", "anchor", "--out", str(anchor_file),
                                    "--json"))  # fmt: skip
        assert stat.S_IMODE(anchor_file.stat().st_mode) == 0o600
        with workspace.store.read_session() as session:
            head = session.get(AuditHead, 1)
            assert head is not None and anchored["seq"] <= head.seq
        magic, seq, head_hash, _written = anchor_file.read_text().split()
        assert (int(seq), head_hash) == (anchored["seq"], anchored["hash"])
        assert magic == audit.ANCHOR_MAGIC
        verdict = json.loads(ansim("sue", "audit", "verify", "--anchor", str(anchor_file),
                                   "--json"))  # fmt: skip
        assert verdict["ok"], verdict
        forged = tmp_path / "forged.txt"
        forged.write_text(f"{magic} {seq} {'0' * len(head_hash)} {_written}\n")
        refused = json.loads(ansim("sue", "audit", "verify", "--anchor", str(forged), "--json",
                                   expect=1))  # fmt: skip
        assert not refused["ok"]

        plot = tmp_path / "month.png"
        ansim("sue", "report", "--plot", str(plot))
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert stat.S_IMODE(plot.stat().st_mode) == 0o600
