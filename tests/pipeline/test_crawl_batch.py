"""The crawl's write batch: written when full or due, one SAVEPOINT per URL, finishes
last, a failed batch recorded not at all, fetched bodies kept until it is written."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from ansim.crawler.fetch import FetchResult
from ansim.pipeline.crawl import CrawlOptions, start_run
from ansim.pipeline.crawl.batch import WriteBatch
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlUrl
from sqlalchemy import insert, select, text

SEEDS = [f"https://forum.example/{n}" for n in range(4)]


@pytest.fixture
def workspace(ansim_home):
    ws, _ = init_workspace()
    yield ws
    ws.close()


@pytest.fixture
def row_ids(workspace) -> list[int]:
    run_id = start_run(workspace, CrawlOptions(seeds=SEEDS))
    with workspace.store.session() as session:
        return list(
            session.execute(
                select(CrawlUrl.id).where(CrawlUrl.run_id == run_id).order_by(CrawlUrl.id)
            ).scalars()
        )


def states(workspace) -> dict[int, tuple[str, str | None]]:
    with workspace.store.session() as session:
        rows = session.execute(select(CrawlUrl.id, CrawlUrl.state, CrawlUrl.outcome))
        return {row.id: (row.state, row.outcome) for row in rows}


def test_the_batch_is_written_when_it_is_full(workspace, row_ids) -> None:
    outcomes: Counter[str] = Counter()
    written: list[bool] = []
    batch = WriteBatch(workspace, outcomes, written.append, every_urls=3, interval_s=3600)
    batch.finish(row_ids[0], "done", outcome="ok")
    batch.finish(row_ids[1], "skipped", outcome="robots_disallowed", error="robots.txt")
    assert (len(batch), batch.row_ids, written) == (2, {row_ids[0], row_ids[1]}, [])
    assert states(workspace)[row_ids[0]] == ("pending", None)  # nothing written yet
    batch.finish(row_ids[2], "done", outcome="not_html")
    assert written == [True] and len(batch) == 0 and batch.row_ids == set()
    assert states(workspace) == {
        row_ids[0]: ("done", "ok"),
        row_ids[1]: ("skipped", "robots_disallowed"),
        row_ids[2]: ("done", "not_html"),
        row_ids[3]: ("pending", None),
    }
    assert outcomes == {"ok": 1, "robots_disallowed": 1, "not_html": 1}


def test_a_batch_left_open_is_written_when_due(workspace, row_ids) -> None:
    written: list[bool] = []
    due_at_once = WriteBatch(workspace, Counter(), written.append, every_urls=100, interval_s=0)
    due_at_once.finish(row_ids[0], "done", outcome="ok")
    assert written == [True]

    waiting = WriteBatch(workspace, Counter(), written.append, every_urls=100, interval_s=0.01)

    async def left_open() -> None:
        waiting.finish(row_ids[1], "done", outcome="ok")
        writer = asyncio.create_task(waiting.write_on_interval())
        try:
            while len(waiting):
                await asyncio.sleep(0.005)
        finally:
            writer.cancel()

    written.clear()
    asyncio.run(asyncio.wait_for(left_open(), timeout=30))
    assert written == [True]
    assert states(workspace)[row_ids[1]] == ("done", "ok")


def test_a_url_whose_writes_fail_rolls_back_alone(workspace, row_ids) -> None:
    outcomes: Counter[str] = Counter()
    batch = WriteBatch(workspace, outcomes, lambda _: None, every_urls=100, interval_s=3600)

    def failing(session) -> None:
        session.execute(
            insert(CrawlUrl).values(
                run_id=1, url="https://x.example/", url_hash="x" * 64, kind="page", depth=9
            )
        )
        batch.finish_in_batch(row_ids[0], "done", outcome="ok")
        raise RuntimeError("the evidence disk is full")

    batch.defer(row_ids[0], failing)
    batch.finish(row_ids[1], "done", outcome="ok")
    batch.write()
    assert states(workspace)[row_ids[0]] == ("failed", "internal_error")
    assert states(workspace)[row_ids[1]] == ("done", "ok")
    with workspace.store.session() as session:
        assert session.execute(select(CrawlUrl.id).where(CrawlUrl.depth == 9)).first() is None
    assert outcomes == {"internal_error": 1, "ok": 1}


def test_a_batch_the_store_refuses_records_nothing(workspace, row_ids) -> None:
    written: list[bool] = []
    batch = WriteBatch(workspace, Counter(), written.append, every_urls=100, interval_s=3600)
    batch.finish(row_ids[0], "done", outcome="ok")
    # Inside its SAVEPOINT this write succeeds; the finishes after it then find no table.
    batch.defer(
        row_ids[1], lambda s: s.execute(text("ALTER TABLE crawl_url RENAME TO crawl_url_gone"))
    )
    batch.write()
    assert written == [False]
    assert batch.row_ids == set()
    assert {state for state, _ in states(workspace).values()} == {"pending"}


def test_fetched_bodies_stay_until_the_batch_that_may_need_them_is_written(
    workspace, row_ids, tmp_path: Path
) -> None:
    batch = WriteBatch(workspace, Counter(), lambda _: None, every_urls=100, interval_s=3600)
    bodies = [tmp_path / "nothing-waits", tmp_path / "a-write-waits"]
    for body in bodies:
        body.write_bytes(b"<html>")
    batch.discard_after_write(FetchResult(url="u", outcome="ok", body_path=bodies[0]))
    assert not bodies[0].exists()
    batch.finish(row_ids[0], "done", outcome="ok")
    batch.discard_after_write(FetchResult(url="u", outcome="ok", body_path=bodies[1]))
    assert bodies[1].exists()
    batch.write()
    assert not bodies[1].exists()
