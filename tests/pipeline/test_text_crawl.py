"""Crawled page text goes through the text tier: a reported post reposted with evasions
inside a forum page on a loopback site is queued for takedown; other pages are not."""

from __future__ import annotations

import random
from pathlib import Path

from aiohttp import web
from ansim.casework import queue
from ansim.casework.cases import open_case
from ansim.pipeline import crawl as crawling
from ansim.pipeline import intake
from ansim.pipeline.workspaces import init_workspace

from tests.localserve import LocalServer

POST = (
    "이 사람 집 주소는 서울시 마포구 예시로 12길 34, 전화번호는 010-2468-1357 입니다. 퍼뜨려 주세요"
)
REPOST = (
    "이 사람 집 주소는 서울시 마포구 예시로 12길 34 전화번호는 공일공 2468 1357 입니다 퍼뜨려주세요"
)


def _page(i: int) -> str:
    chatter = " ".join(
        f"<p>{n}번째 댓글: 오늘 경기 정말 재밌었어요 다음 주도 기대됩니다</p>" for n in range(20)
    )
    planted = f"<p>{REPOST}</p>" if i == 2 else ""
    links = "".join(f'<a href="/p/{j}.html">next</a>' for j in (2 * i + 1, 2 * i + 2) if j < 5)
    return f"<html><body><h1>게시판 {i}</h1>{chatter}{planted}{links}</body></html>"


async def _allow_all(_request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nAllow: /\n")


def test_crawled_page_with_reposted_text_is_queued(ansim_home: Path) -> None:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        if i >= 5:
            raise web.HTTPNotFound()
        return web.Response(text=_page(i), content_type="text/html")

    app.router.add_get("/p/{i}.html", page)
    app.router.add_get("/robots.txt", _allow_all)
    workspace, _ = init_workspace()
    try:
        case_id = open_case(workspace, "stalking")
        added = intake.add_reference_texts(workspace, case_id, [("--text", POST)])
        assert added[0].error is None
        with LocalServer(app) as server:
            options = crawling.CrawlOptions(
                seeds=[server.url("/p/0.html")],
                allow_loopback=True,
                min_delay_s=0.0,
                hash_processes=1,
                max_depth=5,
            )
            summary = crawling.run_crawl(workspace, options)
        assert summary.texts_hashed == 5
        assert [m["url"].rsplit("/", 1)[1] for m in summary.match_list] == ["2.html"]
        assert summary.match_list[0]["signal"].startswith("text_")
        items = queue.list_queue(workspace, case_id=case_id)
        assert len(items) == 1
    finally:
        workspace.close()


def _hunted_after_crawl(app: web.Application, paths: list[str], max_depth: int) -> list:
    """Crawl `paths` on a loopback server for `app`, then register POST as a new text
    reference; returns the crawled pages its retro-hunt queued (file name, signal)."""
    app.router.add_get("/robots.txt", _allow_all)
    workspace, _ = init_workspace()
    try:
        with LocalServer(app) as server:
            options = crawling.CrawlOptions(
                seeds=[server.url(path) for path in paths],
                allow_loopback=True,
                min_delay_s=0.0,
                hash_processes=1,
                max_depth=max_depth,
            )
            crawling.run_crawl(workspace, options)
            case_id = open_case(workspace, "stalking")
            added = intake.add_reference_texts(workspace, case_id, [("--text", POST)])
        return [(m.location.rsplit("/", 1)[1], m.signal) for m in added[0].retro_matches]
    finally:
        workspace.close()


def test_new_text_reference_is_retro_hunted_in_crawled_pages(ansim_home: Path) -> None:
    app = web.Application()

    async def short(_request: web.Request) -> web.Response:
        return web.Response(
            text=f"<html><body><p>{REPOST}</p></body></html>", content_type="text/html"
        )

    async def other(_request: web.Request) -> web.Response:
        return web.Response(text=_page(0), content_type="text/html")

    app.router.add_get("/short.html", short)
    app.router.add_get("/p/{i}.html", other)
    hunted = _hunted_after_crawl(app, ["/short.html", "/p/0.html"], max_depth=1)
    assert [name for name, _ in hunted] == ["short.html"]
    assert hunted[0][1].startswith("text_")


def test_new_text_reference_is_retro_hunted_inside_a_longer_crawled_page(ansim_home: Path) -> None:
    """The post sits among a hundred different comments and the page is stored whole:
    LSH on the post's MinHash would not propose it; the history's exact scan does."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        syllables = random.Random(i).choices([chr(c) for c in range(0xAC00, 0xD7A4)], k=2000)
        comments = [f"<p>{''.join(syllables[n : n + 20])}</p>" for n in range(0, 2000, 20)]
        planted = [f"<p>{REPOST}</p>"] if i == 2 else []
        body = "".join(comments[:60] + planted + comments[60:])
        return web.Response(text=f"<html><body>{body}</body></html>", content_type="text/html")

    app.router.add_get("/p/{i}.html", page)
    hunted = _hunted_after_crawl(app, [f"/p/{i}.html" for i in range(3)], max_depth=0)
    assert hunted == [("2.html", "text_contains_reference")]
