"""The takedown workflow on the store, on SQLite and PostgreSQL: confirmation policy,
notices over SMTP, re-checks against a local HTTP server, reappearance, purge, report."""

from __future__ import annotations

import csv
import email
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import policy as email_policy
from pathlib import Path

import pytest
from ansim.casework import confirmations, hosts, notice_service, queue, retention
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.lifecycle import InvalidTransition, as_utc
from ansim.casework.notices import Sender
from ansim.casework.recheck import RecheckPolicy
from ansim.casework.report_service import build_report
from ansim.casework.smtp import SmtpSettings
from ansim.casework.workspace import Workspace
from ansim.pipeline.recheck_service import RecheckFetch, recheck
from ansim.settings import Settings
from ansim.store import audit
from ansim.store.tables import (
    AuditEntry,
    Case,
    Evidence,
    Notice,
    Recheck,
    Signal,
    Takedown,
    TakedownEvent,
    utcnow,
)
from sqlalchemy import func, select

from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy
from tests.conftest import REPO_ROOT
from tests.helpers import photo_like

SENDER = Sender("Test Support Center", "takedown@center.example")
LOCAL = RecheckFetch(timeout_s=3, allow_loopback=True, min_delay_s=0)


@pytest.fixture
def workspace(backend_workspace: Workspace) -> Workspace:
    return as_analyst(backend_workspace, "kim")


def statuses(workspace: Workspace, ids: list[int]) -> list[str]:
    with workspace.store.session() as session:
        return [session.get(Takedown, i).status for i in ids]


def history(workspace: Workspace, takedown_id: int) -> list[str]:
    with workspace.store.session() as session:
        events = session.execute(
            select(TakedownEvent.to_status)
            .where(TakedownEvent.takedown_id == takedown_id)
            .order_by(TakedownEvent.id)
        )
        return list(events.scalars())


# --- confirmation -------------------------------------------------------------------------


def test_two_analyst_rule_and_forbidden_moves(workspace: Workspace, tmp_path: Path) -> None:
    case_id, _, reference = open_case_with_reference(
        workspace, tmp_path, seed=1, case_type="child-exploitation"
    )
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    [first] = found_at(workspace, copy, "https://img.host.example/a.jpg")
    [second] = found_at(workspace, copy, "https://img.host.example/b.jpg")
    confirmations.set_rule(workspace, "child-exploitation", 2)

    shown = confirmations.confirm(workspace, first)
    assert shown["status"] == "new" and shown["confirmations"] == ["kim"]
    with pytest.raises(InvalidTransition, match="already confirmed by kim"):
        confirmations.confirm(workspace, first)
    shown = confirmations.confirm(as_analyst(workspace, "lee"), first, note="same photo")
    assert shown["status"] == "confirmed" and shown["confirmations"] == ["kim", "lee"]
    assert history(workspace, first) == ["new", "confirmed"]

    with pytest.raises(InvalidTransition, match="queue item .* is already confirmed"):
        confirmations.confirm(as_analyst(workspace, "park"), first)
    queue.set_status(workspace, second, "rejected", "different person")
    with pytest.raises(InvalidTransition, match="is rejected; it cannot become confirmed"):
        confirmations.confirm(workspace, second)
    with pytest.raises(NotFound, match="unknown queue item 9999"):
        confirmations.confirm(workspace, 9999)
    with pytest.raises(CaseworkError, match="between 1 and 5"):
        confirmations.set_rule(workspace, "stalking", 0)
    with pytest.raises(CaseworkError, match="case type must be one of"):
        confirmations.set_rule(workspace, "burglary", 2)
    with workspace.store.session() as session:
        checked, problems = audit.verify(session)
    assert problems == [] and checked > 5


# --- hosts and notices ---------------------------------------------------------------------


def test_notices_drafted_per_host_sent_only_when_delivered(
    workspace: Workspace, tmp_path: Path, smtp_server
) -> None:  # noqa: ANN001
    smtp_url, smtp = smtp_server
    case_id, _, reference = open_case_with_reference(workspace, tmp_path, seed=2)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    [ko_item] = found_at(workspace, copy, "https://cdn.board.example.kr/x/1.jpg")
    [en_item] = found_at(workspace, copy, "https://img.host.example/a.jpg")
    [nowhere] = found_at(workspace, copy, "https://unknown.example/p.jpg")
    [formonly] = found_at(workspace, copy, "https://forms.example/p.jpg")
    for item in (ko_item, en_item, nowhere, formonly):
        confirmations.confirm(workspace, item)
    hosts.set_host(workspace, "board.example.kr", "abuse@board.example.kr", lang="ko")
    hosts.set_host(workspace, "IMG.Host.Example.", "abuse@host.example", lang="en")
    hosts.set_host(workspace, "forms.example", form_url="https://forms.example/report")
    with pytest.raises(CaseworkError, match="not an e-mail address"):
        hosts.set_host(workspace, "x.example", "not-an-address")
    with pytest.raises(CaseworkError, match="language must be one of"):
        hosts.set_host(workspace, "x.example", lang="fr")

    drafted = notice_service.draft(workspace, SENDER, tmp_path / "out")
    by_host = {n["host"]: n for n in drafted.notices}
    assert set(by_host) == {"board.example.kr", "img.host.example"}
    assert by_host["board.example.kr"]["lang"] == "ko"
    skipped = {s["id"]: s["reason"] for s in drafted.skipped}
    assert "ansim host set unknown.example --abuse-email" in skipped[nowhere]
    assert "no abuse e-mail (web form: https://forms.example/report)" in skipped[formonly]
    eml_texts = [Path(f).read_bytes() for f in drafted.files]
    for raw in eml_texts:
        body = email.message_from_bytes(raw, policy=email_policy.default).get_content()
        # Hosts get an opaque per-item reference, never the case id (reports stay unlinkable).
        assert case_id not in body and re.search(r"R-[0-9A-F]{16}", body)
        assert "홍길동" not in body and "Blue" not in body and "010-1234" not in body
    with open(drafted.csv, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["url"] for r in rows) == [
        "https://cdn.board.example.kr/x/1.jpg",
        "https://img.host.example/a.jpg",
    ]
    assert statuses(workspace, [ko_item, en_item]) == ["confirmed", "confirmed"]

    # The server refuses the content: nothing is marked sent.
    smtp.reject_data = True
    failed = notice_service.send(workspace, SmtpSettings.from_url(smtp_url))
    assert len(failed.failed) == 2 and failed.sent == []
    assert statuses(workspace, [ko_item, en_item]) == ["confirmed", "confirmed"]
    # Server down: same.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = notice_service.send(workspace, SmtpSettings("127.0.0.1", closed, timeout_s=3))
    assert len(down.failed) == 2 and "cannot deliver" in down.failed[0]["error"]
    assert statuses(workspace, [ko_item, en_item]) == ["confirmed", "confirmed"]

    smtp.reject_data = False
    sent = notice_service.send(workspace, SmtpSettings.from_url(smtp_url))
    assert len(sent.sent) == 2 and len(smtp.messages) == 2
    assert statuses(workspace, [ko_item, en_item]) == ["notice_sent", "notice_sent"]
    assert {m[1][0] for m in smtp.messages} == {"abuse@board.example.kr", "abuse@host.example"}
    # Sending again sends nothing twice.
    assert notice_service.send(workspace, SmtpSettings.from_url(smtp_url)).sent == []
    assert len(smtp.messages) == 2
    assert statuses(workspace, [nowhere, formonly]) == ["confirmed", "confirmed"]


def notice_statuses(workspace: Workspace) -> dict[str, str]:
    return {n["host"]: n["status"] for n in notice_service.list_notices(workspace)}


def test_send_killed_mid_delivery_leaves_notices_to_settle(
    workspace: Workspace, tmp_path: Path, smtp_server
) -> None:  # noqa: ANN001
    smtp_url, smtp = smtp_server
    _case_id, _, reference = open_case_with_reference(workspace, tmp_path, seed=3)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    [first] = found_at(workspace, copy, "https://one.example/a.jpg")
    [second] = found_at(workspace, copy, "https://two.example/b.jpg")
    for item in (first, second):
        confirmations.confirm(workspace, item)
    hosts.set_host(workspace, "one.example", "abuse@one.example")
    hosts.set_host(workspace, "two.example", "abuse@two.example")
    drafted = {n["host"]: n["ref"] for n in notice_service.draft(workspace, SENDER).notices}

    # A mail server that accepts the connection and never answers: `notice send` hangs in
    # delivery and is killed there, twice (one notice each time).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hung_url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
    try:
        for host in ("one.example", "two.example"):
            sender = subprocess.Popen(
                [sys.executable, "-m", "cli", "notice", "send", "--host", host, "--smtp", hung_url],
                cwd=REPO_ROOT,
            )
            deadline = time.monotonic() + 60
            while notice_statuses(workspace)[host] != "sending":
                assert time.monotonic() < deadline and sender.poll() is None
                time.sleep(0.1)
            sender.kill()
            sender.wait()
    finally:
        silent.close()
    assert notice_statuses(workspace) == {"one.example": "sending", "two.example": "sending"}

    # A later send neither retries them blindly nor forgets them.
    again = notice_service.send(workspace, SmtpSettings.from_url(smtp_url))
    assert again.sent == [] and sorted(again.stuck) == sorted(drafted.values())
    assert smtp.messages == []
    listed = notice_service.list_notices(workspace, status="sending")
    assert {n["ref"] for n in listed} == set(drafted.values())

    # The mail log says the first went out: its item moves on, nothing is sent twice.
    settled = notice_service.settle(workspace, drafted["one.example"], delivered=True)
    assert settled["status"] == "sent" and settled["takedowns"] == [first]
    # The second never left: it becomes failed, and the next send delivers it.
    notice_service.settle(as_analyst(workspace, "lee"), drafted["two.example"], delivered=False)
    assert statuses(workspace, [first, second]) == ["notice_sent", "confirmed"]
    retried = notice_service.send(workspace, SmtpSettings.from_url(smtp_url))
    assert [n["ref"] for n in retried.sent] == [drafted["two.example"]] and retried.stuck == []
    assert len(smtp.messages) == 1
    assert statuses(workspace, [first, second]) == ["notice_sent", "notice_sent"]
    with pytest.raises(CaseworkError, match="only a notice stuck in sending"):
        notice_service.settle(workspace, drafted["one.example"], delivered=False)
    with pytest.raises(NotFound, match="unknown notice"):
        notice_service.settle(workspace, "N-1999-00001", delivered=True)
    with workspace.store.session() as session:
        settles = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "notice.settle")
        ).scalars()
        assert sorted(settles) == ["kim", "lee"]


def test_unconfirmed_items_get_no_notice(workspace: Workspace, tmp_path: Path) -> None:
    _, _, reference = open_case_with_reference(workspace, tmp_path, seed=3)
    [item] = found_at(
        workspace, reposted_copy(reference, tmp_path / "c.jpg"), "https://h.example/1"
    )
    hosts.set_host(workspace, "h.example", "abuse@h.example")
    assert notice_service.draft(workspace, SENDER, tmp_path / "out").notices == []
    refused = pytest.raises(InvalidTransition, match="is new; it cannot become notice_sent")
    with workspace.session() as session, refused:
        queue.transition(session, queue.get_item(session, item), "notice_sent", "kim")
    with pytest.raises(CaseworkError, match="no sender address"):
        notice_service.notice_sender(Settings())


# --- re-checks ------------------------------------------------------------------------------


class MediaServer(http.server.BaseHTTPRequestHandler):
    files: dict[str, tuple[int, bytes, str]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, body, content_type = self.files.get(self.path, (404, b"no", "text/plain"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def media_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes, str]]]]:
    files: dict[str, tuple[int, bytes, str]] = {}
    handler = type("Handler", (MediaServer,), {"files": files})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()


def test_recheck_outcomes_resend_escalate_and_reappearance(
    workspace: Workspace, tmp_path: Path, media_server, smtp_server
) -> None:  # noqa: ANN001
    base, files = media_server
    smtp_url, smtp = smtp_server
    settings = SmtpSettings.from_url(smtp_url)
    _, _, reference = open_case_with_reference(workspace, tmp_path, seed=4)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    other = photo_like(tmp_path / "other.png", seed=77)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    urls = {
        "same": f"{base}/same.jpg",  # still the very same bytes
        "reencoded": f"{base}/reencoded.jpg",  # re-encoded again: PDQ still matches
        "replaced": f"{base}/replaced.png",  # other media now: gone
        "deleted": f"{base}/deleted.jpg",  # 404: gone
        "busy": f"{base}/busy.jpg",  # 503: unreachable, no change
        "down": f"http://127.0.0.1:{closed}/x.jpg",  # nothing listening
    }
    ids = {name: found_at(workspace, copy, url)[0] for name, url in urls.items()}
    files.update(
        {
            "/same.jpg": (200, copy.read_bytes(), "image/jpeg"),
            "/reencoded.jpg": (
                200,
                reposted_copy(copy, tmp_path / "again.jpg").read_bytes(),
                "image/jpeg",
            ),
            "/replaced.png": (200, other.read_bytes(), "image/png"),
            "/busy.jpg": (503, b"busy", "text/plain"),
        }
    )
    hosts.set_host(workspace, "127.0.0.1", "abuse@loopback.example")
    for item in ids.values():
        confirmations.confirm(workspace, item)
    with workspace.session() as session:  # as a crawl records it: the page showing the media
        session.add(
            Evidence(
                bundle_id="replaced",
                takedown_id=ids["replaced"],
                page_url=f"{base}/page-taken-down.html",  # 404 on the server
                media_url=urls["replaced"],
                warc_sha256="0" * 64,
                records=0,
            )
        )
    start = utcnow()
    notice_service.draft(workspace, SENDER, tmp_path / "n1", now=start)
    assert len(notice_service.send(workspace, settings, now=start).sent) == 1

    day1 = start + timedelta(hours=25)
    result = recheck(workspace, LOCAL, RecheckPolicy(), settings, SENDER, now=day1)
    verdicts = {c["id"]: (c["verdict"], c["after"]) for c in result.checked}
    assert verdicts[ids["same"]] == ("online", "still_online")
    assert verdicts[ids["reencoded"]] == ("online", "still_online")
    # Gone once: removed only after another gone answer on another day (see below).
    assert verdicts[ids["replaced"]] == ("gone", "notice_sent")
    assert verdicts[ids["deleted"]] == ("gone", "notice_sent")
    assert verdicts[ids["busy"]] == ("unreachable", "notice_sent")
    assert verdicts[ids["down"]] == ("unreachable", "notice_sent")
    # The two still online were resent in one notice, and are notice_sent again.
    assert sorted(result.resend_due) == sorted([ids["same"], ids["reencoded"]])
    assert len(result.resent) == 1 and len(smtp.messages) == 2
    assert history(workspace, ids["same"]) == [
        "new", "confirmed", "notice_sent", "still_online", "notice_sent",
    ]  # fmt: skip
    assert statuses(workspace, [ids["busy"], ids["down"]]) == ["notice_sent", "notice_sent"]
    with workspace.store.session() as session:
        assert session.execute(select(func.count(Recheck.id))).scalar() == 6

    # A week later the same content is still there: escalated, not resent.
    week = start + timedelta(days=8)
    result = recheck(workspace, LOCAL, RecheckPolicy(), settings, SENDER, now=week)
    assert statuses(workspace, [ids["same"]]) == ["escalated"]
    assert statuses(workspace, [ids["replaced"], ids["deleted"]]) == ["removed", "removed"]
    assert history(workspace, ids["same"])[-2:] == ["still_online", "escalated"]
    assert result.resend_due == [] and len(smtp.messages) == 2

    # The deleted one comes back at the same URL: a new item one generation up, linked.
    [again] = found_at(workspace, copy, urls["deleted"])
    assert again != ids["deleted"]
    # ... and at a new URL: linked to the most recently removed item of the reference.
    [elsewhere] = found_at(workspace, copy, f"{base}/mirror.jpg")
    with workspace.store.session() as session:
        came_back = session.get(Takedown, again)
        assert (came_back.generation, came_back.reappearance_of) == (1, ids["deleted"])
        assert session.get(Takedown, elsewhere).reappearance_of == ids["replaced"]
    assert statuses(workspace, [ids["deleted"], ids["replaced"]]) == ["reappeared", "reappeared"]
    # Scanning the same URL again while the new item is open adds nothing.
    assert found_at(workspace, copy, urls["deleted"]) == [again]

    report = build_report(
        workspace, since=start - timedelta(days=1), until=week + timedelta(days=1)
    )
    assert report["reappearance"] == {"removed": 2, "reappeared": 2, "rate": 1.0}
    assert report["by_status"]["escalated"] == 2


def test_recheck_of_removed_items_is_skipped(workspace: Workspace, tmp_path: Path) -> None:
    assert recheck(workspace, LOCAL).checked == []


# --- purge -----------------------------------------------------------------------------------


def test_close_and_purge(workspace: Workspace, tmp_path: Path) -> None:
    case_id, reference_id, reference = open_case_with_reference(workspace, tmp_path, seed=5)
    other_case, _, other_reference = open_case_with_reference(workspace, tmp_path / "o", seed=6)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    [item] = found_at(workspace, copy, "https://h.example/p/1.jpg")
    found_at(workspace, reposted_copy(other_reference, tmp_path / "o.jpg"), "https://h.example/2")
    sizes_before = workspace.banks.sizes()["pdq"]

    with pytest.raises(NotFound, match="unknown case id"):
        retention.close_case(workspace, "C-2099-0001", purge=True)
    shown = retention.close_case(workspace, case_id, purge=True)
    deleted = shown["deleted"]
    assert deleted["references"] == 1 and deleted["reference_signals"] >= 3
    assert deleted["items"] == 1 and deleted["item_signals"] >= 3
    assert deleted["contact"] is True and deleted["takedown_urls"] == 1
    assert shown["index_entries_removed"] >= 1
    assert workspace.banks.sizes()["pdq"] == sizes_before - 1
    with workspace.store.session() as session:
        case = session.get(Case, case_id)
        assert case.contact_encrypted is None and case.pseudonym_encrypted is None
        assert case.status == "closed" and case.purged_at is not None
        assert (
            session.execute(
                select(func.count(Signal.id)).where(Signal.reference_id == reference_id)
            ).scalar()
            == 0
        )
        takedown = session.get(Takedown, item)
        assert takedown.location == f"purged:takedown/{item}" and takedown.host == "h.example"
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "case.purge")
        ).scalar_one()
        assert entry.subject == case_id and '"reference_signals"' in entry.detail
        assert session.get(Case, other_case).pseudonym_encrypted is not None
        checked, problems = audit.verify(session)
        assert problems == []
    with pytest.raises(CaseworkError, match="already purged"):
        retention.close_case(workspace, case_id, purge=True)
    # The purged reference no longer matches anything.
    assert found_at(workspace, copy, "https://h.example/p/9.jpg") == []


def test_close_without_purge_keeps_data(workspace: Workspace, tmp_path: Path) -> None:
    case_id, _, _ = open_case_with_reference(workspace, tmp_path, seed=8)
    assert retention.close_case(workspace, case_id)["purged"] is False
    with pytest.raises(CaseworkError, match="already closed"):
        retention.close_case(workspace, case_id)
    with workspace.store.session() as session:
        assert session.get(Case, case_id).pseudonym_encrypted is not None
        assert session.execute(select(func.count(Notice.id))).scalar() == 0


# --- report over the store ---------------------------------------------------------------


def test_report_over_the_store_matches_hand_computed_figures(
    workspace: Workspace, tmp_path: Path
) -> None:
    _, _, reference = open_case_with_reference(workspace, tmp_path, seed=9)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    ids = [found_at(workspace, copy, f"https://h{i}.example/x.jpg")[0] for i in range(4)]
    with workspace.store.session() as session:
        detected = {i: as_utc(session.get(Takedown, i).detected_at) for i in ids}
    hours = timedelta(hours=1)
    # item: (hours to notice, hours to removal or None)
    plans = {ids[0]: (2, 10), ids[1]: (4, 30), ids[2]: (6, 100), ids[3]: (8, None)}
    for item, (to_notice, to_removal) in plans.items():
        start = detected[item]
        with workspace.session() as session:
            takedown = queue.get_item(session, item, for_update=True)
            queue.transition(session, takedown, "confirmed", "kim", at=start + hours)
            queue.transition(session, takedown, "notice_sent", "kim", at=start + to_notice * hours)
            if to_removal is not None:
                queue.transition(session, takedown, "removed", "kim", at=start + to_removal * hours)
    # A skewed clock: stamped before the notice, the event is moved up to it.
    with workspace.session() as session:
        takedown = queue.get_item(session, ids[3], for_update=True)
        event = queue.transition(
            session, takedown, "still_online", "lee", at=detected[ids[3]] - 3 * hours
        )
        assert event.at == detected[ids[3]] + 8 * hours
    report = build_report(workspace, since=utcnow() - timedelta(days=1))
    # Notice: 2 4 6 8 -> median 5, p90 at rank 2.7 -> 6 + 0.7 * 2 = 7.4.
    assert report["detection_to_notice"]["median_hours"] == pytest.approx(5.0, abs=1e-3)
    assert report["detection_to_notice"]["p90_hours"] == pytest.approx(7.4, abs=1e-3)
    # Removal: 10 30 100 -> median 30, p90 at rank 1.8 -> 30 + 0.8 * 70 = 86;
    # within 24 h 1/3, within 3 days 2/3.
    removal = report["detection_to_removal"]
    assert removal["median_hours"] == pytest.approx(30.0, abs=1e-3)
    assert removal["p90_hours"] == pytest.approx(86.0, abs=1e-3)
    assert removal["share_within_24h"] == pytest.approx(1 / 3)
    assert removal["share_within_3_days"] == pytest.approx(2 / 3)
    assert report["by_status"] == {"still_online": 1, "removed": 3}
    assert report["clock_skew_events"] == 0
