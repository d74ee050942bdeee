"""The crawl's options: refused before anything is stored, kept with the run as JSON."""

from __future__ import annotations

import pytest
from ansim.casework.errors import CaseworkError
from ansim.pipeline.crawl import CrawlOptions


def test_options_survive_the_round_trip_through_the_run_row() -> None:
    options = CrawlOptions(
        seeds=["https://forum.example/"], max_pages=7, allow_hosts=["img.example"], retries=0
    )
    assert CrawlOptions.from_json(options.to_json()) == options


def test_bad_modes_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(CaseworkError, match="image verification must be one of triage, all, off"):
        CrawlOptions(image_verification="some").check()
    with pytest.raises(CaseworkError, match="scope must be one of"):
        CrawlOptions(scope="everywhere").check()
    CrawlOptions(scope="allow-list", image_verification="off").check()


def test_the_scope_holds_the_seeds_sites_and_the_allowed_hosts() -> None:
    scope = CrawlOptions(
        seeds=["https://forum.example.org/start", "not a url"],
        scope="same-site",
    ).crawl_scope()
    assert scope.allows("https://img.example.org/page")  # same registrable domain
    assert not scope.allows("https://elsewhere.org/")
    listed = CrawlOptions(scope="allow-list", allow_hosts=["img.example"]).crawl_scope()
    assert listed.allows("https://cdn.img.example/a.jpg")
    assert not listed.allows("https://forum.example/")


def test_fetch_limits_and_politeness_come_from_the_options() -> None:
    options = CrawlOptions(
        connect_timeout_s=1, read_timeout_s=2, total_timeout_s=3, max_response_bytes=4,
        retries=5, host_concurrency=6, min_delay_s=0.5,
    )  # fmt: skip
    limits = options.fetch_limits()
    assert (limits.connect_timeout_s, limits.read_timeout_s, limits.total_timeout_s) == (1, 2, 3)
    assert (limits.max_bytes, limits.retries) == (4, 5)
    politeness = options.politeness()
    assert (politeness.concurrency_per_host, politeness.min_delay_s) == (6, 0.5)
