"""Two scans of the same URL for the same case at once, on SQLite and PostgreSQL: one queue
item, both scans recorded, no unique-constraint error."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from ansim.casework import reappearance
from ansim.pipeline.workspaces import init_workspace, open_workspace
from ansim.store import audit
from ansim.store.tables import Match, ScannedItem, Takedown
from sqlalchemy import func, select

from tests.casework.test_concurrency import run_together
from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy

URL = "https://h.example/race/1.jpg"


def test_two_scans_of_one_url_queue_one_item(
    backend_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup, _ = init_workspace()
    case_id, _, reference = open_case_with_reference(as_analyst(setup, "setup"), tmp_path, seed=21)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    setup.close()

    # Hold both scans right after they looked for an existing item and found none, so both
    # go on to insert one (PostgreSQL). SQLite's BEGIN IMMEDIATE lets only one transaction
    # in at a time: there the first waits out the timeout alone and the race cannot happen.
    both_looked = threading.Barrier(2, timeout=5)
    looked = threading.local()
    current_at = reappearance.current_at

    def current_at_then_wait(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        found = current_at(*args, **kwargs)
        if not getattr(looked, "once", False):
            looked.once = True
            with contextlib.suppress(threading.BrokenBarrierError):
                both_looked.wait()
        return found

    monkeypatch.setattr(reappearance, "current_at", current_at_then_wait)
    queued: dict[str, list[int]] = {}

    def scan(name: str):  # noqa: ANN202
        def work() -> None:
            workspace = as_analyst(open_workspace(), name)
            try:
                queued[name] = found_at(workspace, copy, URL)
            finally:
                workspace.close()

        return work

    run_together(scan("crawler-1"), scan("crawler-2"))

    assert queued["crawler-1"] == queued["crawler-2"] and len(queued["crawler-1"]) == 1
    check = open_workspace()
    try:
        with check.session() as session:
            takedowns = session.execute(
                select(Takedown.id).where(Takedown.location == URL, Takedown.case_id == case_id)
            ).all()
            assert len(takedowns) == 1
            assert session.execute(select(func.count(ScannedItem.id))).scalar() == 2
            assert session.execute(select(func.count(Match.id))).scalar() == 2
            checked, problems = audit.verify(session)
            assert problems == [] and checked > 0
    finally:
        check.close()
