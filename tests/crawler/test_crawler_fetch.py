"""The fetcher against the hostile site: every abuse ends in one classified outcome,
within the time limits, with memory bounded and no temporary file left behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest
from ansim.crawler import fetch as f
from ansim.crawler.fetch import FetchLimits

from tests.crawler_helpers import QUICK_LIMITS, quick_fetcher

HOSTILE_OUTCOMES = [
    ("/loop/a", f.REDIRECT_LOOP),
    ("/chain/0", f.TOO_MANY_REDIRECTS),
    ("/huge", f.TOO_LARGE),
    ("/huge-chunked", f.TOO_LARGE),
    ("/drip", f.TIMEOUT),
    ("/stall", f.TIMEOUT),
    ("/gzip-bomb", f.TOO_LARGE),
    ("/bad-gzip", f.BAD_ENCODING),
    ("/redirect-javascript", f.BAD_URL),
    ("/storm/0", f.HTTP_ERROR),
    ("/reset", f.CONNECTION_ERROR),
    ("/reset-midbody", f.CONNECTION_ERROR),
    ("/no-such-page", f.HTTP_ERROR),
]
# One attempt, short total: the timeout cases cost seconds, not tens of seconds.
NO_RETRY = FetchLimits(**{**QUICK_LIMITS.__dict__, "retries": 0, "total_timeout_s": 1.5})


@pytest.mark.parametrize(("path", "outcome"), HOSTILE_OUTCOMES)
def test_hostile_response_ends_in_its_outcome(hostile_site, tmp_path: Path, path, outcome) -> None:
    async def go():
        async with quick_fetcher(work_dir=tmp_path, limits=NO_RETRY) as fetcher:
            started = time.monotonic()
            result = await fetcher.fetch(hostile_site.url(path))
            return result, time.monotonic() - started, fetcher.outcomes

    result, seconds, counted = asyncio.run(go())
    assert result.outcome == outcome, result.error
    assert result.error
    assert counted[outcome] == 1
    assert seconds < 5
    assert result.body_path is None
    assert list(tmp_path.iterdir()) == [], "failed fetches must leave no temporary files"


def test_two_gigabyte_bodies_and_bombs_cost_at_most_the_cap(hostile_site, tmp_path: Path) -> None:
    process = psutil.Process()

    async def go():
        async with quick_fetcher(work_dir=tmp_path, limits=NO_RETRY) as fetcher:
            results = []
            for path in ("/huge-chunked", "/gzip-bomb", "/huge-chunked", "/gzip-bomb"):
                results.append(await fetcher.fetch(hostile_site.url(path)))
                rss_after.append(process.memory_info().rss)
            return results

    rss_before = process.memory_info().rss
    rss_after: list[int] = []
    results = asyncio.run(go())
    assert [r.outcome for r in results] == [f.TOO_LARGE] * 4
    assert "decompression bomb" in results[1].error
    # 2 GiB and 64 MiB bodies: nothing close to them was ever held in memory.
    assert max(rss_after) - rss_before < 48 << 20


def test_transient_errors_are_retried_with_backoff(hostile_site) -> None:
    async def go():
        async with quick_fetcher() as fetcher:
            return await fetcher.fetch(hostile_site.url("/flaky/retry-test"))

    result = asyncio.run(go())
    assert result.outcome == f.OK and result.attempts == 3
    assert hostile_site.hits["/flaky/retry-test"] == 3


def test_error_storm_gives_up_after_the_retry_budget(hostile_site) -> None:
    before = hostile_site.hits["/storm/7"]

    async def go():
        async with quick_fetcher() as fetcher:
            return await fetcher.fetch(hostile_site.url("/storm/7"))

    result = asyncio.run(go())
    assert result.outcome == f.HTTP_ERROR and result.status == 503
    assert hostile_site.hits["/storm/7"] - before == QUICK_LIMITS.retries + 1


def test_retry_after_is_honoured_and_slows_the_host(hostile_site) -> None:
    async def go():
        async with quick_fetcher() as fetcher:
            started = time.monotonic()
            result = await fetcher.fetch(hostile_site.url("/ratelimited/once"))
            throttle = fetcher.politeness.host(f"127.0.0.1:{hostile_site.server.port}")
            return result, time.monotonic() - started, throttle

    result, seconds, throttle = asyncio.run(go())
    assert result.outcome == f.OK
    assert seconds >= 0.95  # Retry-After: 1
    assert throttle.throttled == 1 and throttle.delay_s >= 0.4  # still slowed after recovery


def test_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    from aiohttp import web

    from tests.localserve import LocalServer

    async def forever_busy(_request):
        return web.Response(status=429, headers={"Retry-After": "3600"})

    app = web.Application()
    app.router.add_get("/", forever_busy)

    async def go(url):
        async with quick_fetcher() as fetcher:
            started = time.monotonic()
            return await fetcher.fetch(url), time.monotonic() - started

    with LocalServer(app) as server:
        result, seconds = asyncio.run(go(server.url("/")))
    assert result.outcome == f.THROTTLED and seconds < 2


def test_successful_fetch_records_the_exchange(hostile_site) -> None:
    async def go():
        async with quick_fetcher() as fetcher:
            result = await fetcher.fetch(hostile_site.url("/gzipped"))
            return result, result.read_body()

    result, body = asyncio.run(go())
    assert result.ok and result.status == 200
    assert body.startswith(b"<html>")
    exchange = result.exchanges[-1]
    assert exchange.resolved_ip == "127.0.0.1"
    assert exchange.raw_sha256 != result.sha256  # raw is gzip, body decoded
    assert ("Content-Encoding", "gzip") in exchange.response_headers
