"""A scan and two analysts at once, on SQLite and PostgreSQL: no lost updates, no double
transitions, an unbroken audit chain; and two senders never send one notice twice."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from ansim.casework import confirmations, hosts, notice_service, queue
from ansim.casework.errors import CaseworkError
from ansim.casework.notices import Sender
from ansim.casework.smtp import SmtpSettings
from ansim.casework.workspace import Workspace
from ansim.pipeline.workspaces import init_workspace, open_workspace
from ansim.store import audit
from ansim.store.tables import Confirmation, Takedown, TakedownEvent
from sqlalchemy import func, select

from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy

ITEMS_PER_CASE = 6
SCANNED_DURING = 6


def run_together(*jobs: Callable[[], None]) -> None:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def start(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == [], errors


def own_workspace(actor: str) -> Workspace:
    """Like a separate process: its own engine, connections and index handles."""
    return as_analyst(open_workspace(), actor)


def test_scan_and_two_analysts_at_once(backend_home: Path, tmp_path: Path) -> None:
    setup, _ = init_workspace()
    setup = as_analyst(setup, "setup")
    single_case, _, single_ref = open_case_with_reference(setup, tmp_path / "a", seed=11)
    double_case, _, double_ref = open_case_with_reference(
        setup, tmp_path / "b", seed=12, case_type="child-exploitation"
    )
    confirmations.set_rule(setup, "child-exploitation", 2)
    single_copy = reposted_copy(single_ref, tmp_path / "single.jpg")
    double_copy = reposted_copy(double_ref, tmp_path / "double.jpg")
    items = [
        found_at(setup, copy, f"https://h.example/{n}/{i}.jpg")[0]
        for n, copy in (("s", single_copy), ("d", double_copy))
        for i in range(ITEMS_PER_CASE)
    ]
    setup.close()
    refused: dict[str, int] = {"kim": 0, "lee": 0}

    def analyst(
        name: str, decide: Callable[[Workspace, int], None], seed: int
    ) -> Callable[[], None]:
        def work() -> None:
            workspace = own_workspace(name)
            order = items[:]
            random.Random(seed).shuffle(order)
            try:
                for item in order:
                    try:
                        decide(workspace, item)
                    except CaseworkError:
                        refused[name] += 1
            finally:
                workspace.close()

        return work

    def kim_decides(workspace: Workspace, item: int) -> None:
        confirmations.confirm(workspace, item)

    def lee_decides(workspace: Workspace, item: int) -> None:
        if item % 3 == 0:
            queue.set_status(workspace, item, "rejected", "not the same person")
        else:
            confirmations.confirm(workspace, item)

    def scanner() -> None:
        workspace = own_workspace("crawler")
        try:
            for i in range(SCANNED_DURING):
                found_at(workspace, single_copy, f"https://new.example/{i}.jpg")
        finally:
            workspace.close()

    run_together(analyst("kim", kim_decides, 1), analyst("lee", lee_decides, 2), scanner)

    checker = open_workspace()
    try:
        with checker.store.session() as session:
            for item in items:
                takedown = session.get(Takedown, item)
                events = list(
                    session.execute(
                        select(TakedownEvent)
                        .where(TakedownEvent.takedown_id == item)
                        .order_by(TakedownEvent.id)
                    ).scalars()
                )
                # One unbroken chain: every event starts where the previous one ended...
                previous = None
                for event in events:
                    assert event.from_status == previous, (item, [e.to_status for e in events])
                    previous = event.to_status
                # ...ends at the item's status (no lost update), and decides exactly once.
                assert takedown.status == previous
                decisions = [e.to_status for e in events if e.from_status == "new"]
                assert len(decisions) == 1, (item, decisions)
                analysts = set(
                    session.execute(
                        select(Confirmation.analyst).where(Confirmation.takedown_id == item)
                    ).scalars()
                )
                needed = 2 if takedown.case_id == double_case else 1
                if takedown.status == "confirmed":
                    assert len(analysts) >= needed
                    if needed == 2:
                        assert analysts == {"kim", "lee"}
                else:
                    assert takedown.status == "rejected" and item % 3 == 0
            new_items = session.execute(
                select(func.count(Takedown.id)).where(
                    Takedown.location.like("https://new.example/%")
                )
            ).scalar()
            assert new_items == SCANNED_DURING
            checked, problems = audit.verify(session)
            assert problems == [] and checked > len(items) * 2
        # Two analysts each tried every item: the losers of each race were refused.
        assert refused["kim"] + refused["lee"] > 0
        assert single_case != double_case
    finally:
        checker.close()


def test_two_senders_never_send_one_notice_twice(
    backend_home: Path, tmp_path: Path, smtp_server
) -> None:  # noqa: ANN001
    smtp_url, smtp = smtp_server
    setup, _ = init_workspace()
    setup = as_analyst(setup, "setup")
    _, _, reference = open_case_with_reference(setup, tmp_path, seed=13)
    copy = reposted_copy(reference, tmp_path / "c.jpg")
    domains = [f"host{i}.example" for i in range(4)]
    for domain in domains:
        hosts.set_host(setup, domain, f"abuse@{domain}")
        [item] = found_at(setup, copy, f"https://{domain}/p.jpg")
        confirmations.confirm(setup, item)
    sender = Sender("Center", "takedown@center.example")
    assert len(notice_service.draft(setup, sender, tmp_path / "out").notices) == 4
    setup.close()
    results: list[notice_service.SendResult] = []

    def send_all(name: str) -> Callable[[], None]:
        def work() -> None:
            workspace = own_workspace(name)
            try:
                results.append(notice_service.send(workspace, SmtpSettings.from_url(smtp_url)))
            finally:
                workspace.close()

        return work

    run_together(send_all("kim"), send_all("lee"))
    assert len(smtp.messages) == 4
    assert sorted(m[1][0] for m in smtp.messages) == sorted(f"abuse@{d}" for d in domains)
    assert sum(len(r.sent) for r in results) == 4
    checker = open_workspace()
    try:
        with checker.store.session() as session:
            sent_events = session.execute(
                select(func.count(TakedownEvent.id)).where(TakedownEvent.to_status == "notice_sent")
            ).scalar()
            assert sent_events == 4
    finally:
        checker.close()


@pytest.fixture(autouse=True)
def _analyst_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIM_ANALYST", "someone")
