"""The crawl on crash-proof workers: a worker SIGKILLed mid-item fails that URL alone (with
the reason), every other URL is recorded as it would be, `--resume` tries the lost URL
again until it has cost `max_item_kills` workers; pages are parsed in the workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from ansim.casework.cases import open_case
from ansim.casework.errors import CaseworkError
from ansim.crawler.extract import MAX_NESTING_DEPTH
from ansim.pipeline import crawl as crawling
from ansim.pipeline import intake
from ansim.pipeline.crawl import hashing
from ansim.pipeline.workers import WORKER_LOST
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlRun, CrawlUrl, ScannedItem
from sqlalchemy import func, select

from tests.crawl_site import CrawlSite
from tests.localserve import LocalServer

# Bytes that make the test's hook kill the worker holding them (trailing data after an
# image's end, or a comment in a page: every decoder and parser ignores them).
KILL_MARK = b"<!-- ansim-test: SIGKILL the worker holding this -->"
HOSTILE_MEDIA = "/m/3.img"
pytestmark = pytest.mark.timeout(600)


def _die_on_the_mark(path: Path) -> None:
    if multiprocessing.parent_process() is not None and KILL_MARK in path.read_bytes():
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would, mid-item


def fingerprint_or_die(path: Path, *args: Any) -> Any:
    """In a crawl worker: the real fingerprint, unless the file carries the kill mark."""
    _die_on_the_mark(path)
    return real_fingerprint(path, *args)


def parse_or_die(path: Path, url: str) -> Any:
    """In a crawl worker: the real page parse, unless the page carries the kill mark."""
    _die_on_the_mark(path)
    return real_parse(path, url)


real_fingerprint = hashing.fingerprint_and_match
real_parse = hashing.parse_page_file


@pytest.fixture
def site(tmp_path: Path):
    generated = CrawlSite(tmp_path / "site", pages=6, per_page=2, planted=1)
    number = int(HOSTILE_MEDIA.split("/")[-1].split(".")[0])
    generated.images[number] += KILL_MARK
    deep = "<div>" * (MAX_NESTING_DEPTH + 50) + "too deep" + "</div>" * (MAX_NESTING_DEPTH + 50)

    async def hostile_page(request: web.Request) -> web.Response:
        html = {
            "deep": f"<html><body>{deep}</body></html>",
            "killer": f"<html><body>{KILL_MARK.decode()}<p>a page</p></body></html>",
        }[request.match_info["name"]]
        return web.Response(text=html, content_type="text/html")

    generated.app.router.add_get("/h/{name}.html", hostile_page)
    with LocalServer(generated.app) as server:
        generated.server = server
        yield generated


@pytest.fixture
def workspace(ansim_home: Path):
    ws, _ = init_workspace()
    yield ws
    ws.close()


@pytest.fixture
def killing_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pool sends these by name: each worker imports this module and runs them there.
    monkeypatch.setattr(hashing, "fingerprint_and_match", fingerprint_or_die)
    monkeypatch.setattr(hashing, "parse_page_file", parse_or_die)


def options(site: CrawlSite) -> crawling.CrawlOptions:
    seeds = [site.server.url(p) for p in ("/p/0.html", "/h/deep.html", "/h/killer.html")]
    return crawling.CrawlOptions(
        seeds=seeds, allow_loopback=True, min_delay_s=0.0, hash_processes=2, max_depth=10
    )


def rows(workspace) -> dict[str, CrawlUrl]:
    with workspace.session() as session:
        return {
            row.url.split("127.0.0.1")[1].split("/", 1)[1]: row
            for row in session.scalars(select(CrawlUrl))
        }


def test_a_worker_killed_mid_item_fails_that_url_alone_and_resume_retries_it(
    site, workspace, killing_workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = open_case(workspace, "other")
    intake.add_reference_files(workspace, case_id, site.reference_files)
    summary = crawling.run_crawl(workspace, options(site))

    recorded = rows(workspace)
    hostile = recorded[HOSTILE_MEDIA.lstrip("/")]
    assert (hostile.state, hostile.outcome) == ("failed", "worker_lost")
    assert hostile.error == (
        f"{WORKER_LOST} (1 of at most 2): the worker was killed by SIGKILL while on this item"
    )
    killer = recorded["h/killer.html"]  # parsed in a worker: its death is the page's alone
    assert (killer.state, killer.outcome) == ("failed", "worker_lost")
    deep = recorded["h/deep.html"]
    assert (deep.state, deep.outcome) == ("failed", "page_refused")
    assert "more than 1,000 deep" in deep.error
    others = [r for key, r in recorded.items() if key not in (HOSTILE_MEDIA[1:], "h/killer.html")]
    others = [r for r in others if r is not deep]
    assert len(others) == len(site.page_paths) + len(site.media_paths) - 1
    assert {(r.state, r.outcome) for r in others} <= {("done", "ok"), ("done", "duplicate_content")}
    assert {m["url"].split(site.server.base_url)[1] for m in summary.match_list} == set(
        site.planted_paths
    )
    assert summary.outcomes["worker_lost"] == 2 and "internal_error" not in summary.outcomes
    with workspace.session() as session:
        assert session.scalar(select(CrawlRun.status)) == "running"  # open for --resume
        items_before = session.scalar(select(func.count(ScannedItem.id)))

    # The resume tries the two lost URLs again: killed again, they have cost 2 workers each.
    again = crawling.run_crawl(workspace, resume=True)
    recorded = rows(workspace)
    for key in (HOSTILE_MEDIA[1:], "h/killer.html"):
        assert recorded[key].error.startswith(f"{WORKER_LOST} (2 of at most 2): "), key
    assert again.outcomes["worker_lost"] == 2 and (again.pages, again.media) == (1, 1)
    with workspace.session() as session:
        assert session.scalar(select(CrawlRun.status)) == "finished"
        assert session.scalar(select(func.count(ScannedItem.id))) == items_before
    with pytest.raises(CaseworkError, match="no unfinished crawl"):
        crawling.run_crawl(workspace, resume=True)


def test_resume_records_a_lost_url_once_its_worker_survives(
    site, workspace, killing_workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    crawling.run_crawl(workspace, options(site))
    with workspace.session() as session:
        items_before = session.scalar(select(func.count(ScannedItem.id)))
    monkeypatch.undo()  # the workers no longer die on the mark
    crawling.run_crawl(workspace, resume=True)
    recorded = rows(workspace)
    hostile = recorded[HOSTILE_MEDIA.lstrip("/")]
    assert (hostile.state, hostile.outcome, hostile.error) == ("done", "ok", None)
    killer = recorded["h/killer.html"]
    assert (killer.state, killer.outcome) == ("done", "ok")
    assert {r.state for r in recorded.values()} == {"done", "failed"}  # the deep page
    with workspace.session() as session:
        locations = list(session.scalars(select(ScannedItem.location)))
        assert session.scalar(select(CrawlRun.status)) == "finished"
    # The image is recorded once, now; nothing recorded before is recorded twice.
    assert sum(1 for loc in locations if loc.endswith(HOSTILE_MEDIA)) == 1
    assert len(locations) == len(set(locations)) > items_before
