"""robots.txt (Protego, RFC 9309 failure rules, per-host override) and per-host politeness
(concurrency cap, spacing of request starts, adaptive slow-down)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from ansim.crawler.politeness import PolitenessConfig
from ansim.crawler.robots import RobotsCache

from tests.crawler_helpers import quick_fetcher
from tests.localserve import LocalServer


def robots_app(status: int, text: str = "") -> web.Application:
    async def robots(_request):
        return web.Response(status=status, text=text)

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    return app


def refusals(base_url: str, paths: list[str], ignore: set[str] | None = None):
    async def go():
        async with quick_fetcher() as fetcher:
            robots = RobotsCache(fetcher, ignore_hosts=ignore)
            return [await robots.refusal(base_url + p) for p in paths], robots, fetcher

    return asyncio.run(go())


def test_disallowed_paths_are_refused_and_robots_is_fetched_once(hostile_site) -> None:
    before = hostile_site.hits["/robots.txt"]
    reasons, robots, _ = refusals(
        hostile_site.server.base_url, ["/", "/private/secret.png", "/img/0.png", "/private/x"]
    )
    assert [r is None for r in reasons] == [True, False, True, False]
    assert "robots.txt" in reasons[1]
    assert hostile_site.hits["/robots.txt"] - before == 1
    assert robots.counts["disallowed"] == 2


def test_override_allows_and_is_logged(hostile_site, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="ansim.crawler.robots")
    reasons, robots, _ = refusals(
        hostile_site.server.base_url, ["/private/a", "/private/b"], ignore={"127.0.0.1"}
    )
    assert reasons == [None, None]
    assert robots.counts["overridden"] == 2
    assert sum("ignored by configuration" in r.message for r in caplog.records) == 1


def test_missing_robots_allows_everything() -> None:
    with LocalServer(robots_app(404)) as server:
        reasons, _, _ = refusals(server.base_url, ["/", "/anything"])
    assert reasons == [None, None]


def test_unreachable_robots_disallows_everything() -> None:
    with LocalServer(robots_app(503, "down")) as server:
        reasons, _, _ = refusals(server.base_url, ["/", "/anything"])
    assert all(r and "RFC 9309" in r for r in reasons)


def test_crawl_delay_sets_the_host_floor() -> None:
    with LocalServer(robots_app(200, "User-agent: *\nCrawl-delay: 2\nDisallow:\n")) as server:
        _, _, fetcher = refusals(server.base_url, ["/"])
        throttle = fetcher.politeness.host(f"127.0.0.1:{server.port}")
    assert throttle.crawl_delay_s == 2 and throttle.delay_s >= 2


def test_concurrency_per_host_is_capped(hostile_site) -> None:
    hostile_site.max_in_flight = 0

    async def go():
        config = PolitenessConfig(concurrency_per_host=2, min_delay_s=0)
        async with quick_fetcher(politeness=config) as fetcher:
            urls = [hostile_site.url(f"/slow/c{i}") for i in range(6)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    results = asyncio.run(go())
    assert all(r.ok for r in results)
    assert hostile_site.max_in_flight == 2


def test_request_starts_are_spaced_by_the_delay(hostile_site) -> None:
    hostile_site.arrivals.clear()

    async def go():
        config = PolitenessConfig(concurrency_per_host=4, min_delay_s=0.2)
        async with quick_fetcher(politeness=config) as fetcher:
            urls = [hostile_site.url(f"/slow/d{i}") for i in range(4)]
            await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    asyncio.run(go())
    gaps = [b - a for a, b in zip(hostile_site.arrivals, hostile_site.arrivals[1:], strict=False)]
    assert len(gaps) == 3 and min(gaps) >= 0.18


def test_slow_host_raises_the_delay_adaptively(hostile_site) -> None:
    async def go():
        config = PolitenessConfig(concurrency_per_host=1, min_delay_s=0, target_concurrency=1)
        async with quick_fetcher(politeness=config) as fetcher:
            for i in range(3):
                await fetcher.fetch(hostile_site.url(f"/slow/a{i}"))
            return fetcher.politeness.host(f"127.0.0.1:{hostile_site.server.port}").delay_s

    # Three 0.3 s answers move the delay half-way towards 0.3 s each time: 0.15, 0.225, 0.26.
    assert 0.2 < asyncio.run(go()) < 0.31
