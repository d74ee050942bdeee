"""The crawl's frontier: claims shallowest first and once, the visited set, scope, rows
waiting in the write batch, and resuming a run from the store."""

from __future__ import annotations

import pytest
from ansim.pipeline.crawl import CrawlOptions, start_run
from ansim.pipeline.crawl.frontier import Frontier, finish_values, write_finishes
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlUrl
from sqlalchemy import select

SEED = "https://forum.example/"


@pytest.fixture
def workspace(ansim_home):
    ws, _ = init_workspace()
    yield ws
    ws.close()


def open_frontier(workspace, run_id: int, waiting: set[int] | None = None) -> Frontier:
    scope = CrawlOptions(seeds=[SEED]).crawl_scope()
    return Frontier(workspace.store, run_id, scope, waiting=set() if waiting is None else waiting)


def finish(workspace, row_id: int) -> None:
    with workspace.store.session() as session:
        write_finishes(session, [finish_values(row_id, "done", outcome="ok")])


def test_pages_are_claimed_shallowest_first_and_once(workspace) -> None:
    run_id = start_run(workspace, CrawlOptions(seeds=[SEED]))
    frontier = open_frontier(workspace, run_id)
    seed = frontier.claim()
    assert (seed.url, seed.depth) == (SEED, 0)
    assert frontier.claim() is None  # claimed: never handed out twice
    links = [f"{SEED}t/2", f"{SEED}t/1", "https://elsewhere.example/", f"{SEED}t/2"]
    media, out_of_scope = frontier.enqueue(seed, links, ["https://cdn.example/a.jpg"])
    assert out_of_scope == 1
    assert [url for _, url in media] == ["https://cdn.example/a.jpg"]
    assert frontier.media_in_flight == {"https://cdn.example/a.jpg"}
    assert frontier.changed.is_set()  # idle workers wake up for the new pages
    # The same media again (another page shows it) while it is in flight: not returned.
    assert frontier.enqueue(seed, [], ["https://cdn.example/a.jpg"]) == ([], 0)
    frontier.media_done("https://cdn.example/a.jpg")

    claimed = [frontier.claim(), frontier.claim()]
    assert [(r.url, r.depth) for r in claimed] == [(f"{SEED}t/2", 1), (f"{SEED}t/1", 1)]
    assert frontier.claim() is None
    assert frontier.started_pages() == 3
    frontier.page_done(seed.id)
    assert (frontier.finished_pages, frontier.claimed) == (1, {r.id for r in claimed})
    with workspace.store.session() as session:
        urls = session.execute(select(CrawlUrl.url).where(CrawlUrl.run_id == run_id)).scalars()
        assert sorted(urls) == sorted(
            [SEED, f"{SEED}t/1", f"{SEED}t/2", "https://cdn.example/a.jpg"]
        )


def test_a_row_waiting_in_the_write_batch_is_not_claimed(workspace) -> None:
    run_id = start_run(workspace, CrawlOptions(seeds=[SEED, f"{SEED}b"]))
    with workspace.store.session() as session:
        first = session.execute(select(CrawlUrl.id).where(CrawlUrl.url == SEED)).scalar_one()
    waiting = {first}  # finished in memory, still pending in the store
    frontier = open_frontier(workspace, run_id, waiting)
    assert frontier.claim().url == f"{SEED}b"
    assert frontier.claim() is None


def test_a_frontier_opened_again_resumes_from_the_store(workspace) -> None:
    run_id = start_run(workspace, CrawlOptions(seeds=[SEED]))
    frontier = open_frontier(workspace, run_id)
    seed = frontier.claim()
    frontier.enqueue(seed, [f"{SEED}t/1", f"{SEED}t/2"], [])
    assert frontier.claim().url == f"{SEED}t/1"  # in flight when the process died
    finish(workspace, seed.id)

    resumed = open_frontier(workspace, run_id)
    assert resumed.finished_pages == 1  # counted against --max-pages
    assert [resumed.claim().url, resumed.claim().url] == [f"{SEED}t/1", f"{SEED}t/2"]
    assert resumed.claim() is None
    # A link found again after the resume is already in the visited set.
    assert resumed.enqueue(seed, [f"{SEED}t/1"], []) == ([], 0)
    assert resumed.claim() is None
