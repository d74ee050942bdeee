"""Hostile pages: deep nesting refused before parsing, link and media caps before the work."""

from __future__ import annotations

import pytest
from ansim.crawler import extract
from ansim.crawler.extract import (
    MAX_LINKS_PER_PAGE,
    MAX_MEDIA_HOSTS_PER_PAGE,
    MAX_MEDIA_PER_PAGE,
    MAX_NESTING_DEPTH,
    MAX_URL_CANDIDATES,
    PageRefused,
    extract_page,
    nesting_depth,
)


def nested_divs(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"x" + b"</div>" * depth + b"</body></html>"


def test_100000_nested_divs_are_refused_before_parsing() -> None:
    with pytest.raises(PageRefused, match="more than 1,000 deep; not parsed"):
        extract_page(nested_divs(100_000), "https://site.example/")


def test_a_deep_but_plausible_page_is_parsed() -> None:
    page = nested_divs(MAX_NESTING_DEPTH - 10).replace(b"x", b'<img src="/a.jpg">')
    content = extract_page(page, "https://site.example/")
    assert [m.url for m in content.media] == ["https://site.example/a.jpg"]


def test_depth_counts_as_a_parser_nests() -> None:
    # Unclosed <p> and <li> are siblings, void and self-closed tags hold nothing, and
    # scripts, styles and comments are not markup.
    flat = (
        b"<html><body>" + b"<p>para" * 5000 + b"<ul>" + b"<li>item" * 5000 + b"</ul>"
        b"<br><img src=x><hr/><span/><script>for(;;){'<div>'}</script><!-- <div><div> -->"
        b"</body></html>"
    )
    assert nesting_depth(flat) == 3  # html > body > ul (a <p> or <li> adds nothing)
    assert nesting_depth(b"</div></div><div><b>x</b></div>") == 2  # strays never go below 0
    assert nesting_depth(b"<div>" * 5000) == 5000  # never closed: a parser nests them too


def test_200000_links_are_capped_before_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    normalised: list[str] = []
    real = extract.normalize_url

    def counting(url: str, base: str | None = None) -> str | None:
        normalised.append(url)
        return real(url, base)

    monkeypatch.setattr(extract, "normalize_url", counting)
    page = (
        b"<html><body>"
        + b"".join(b'<a href="/p/%d?utm_source=x">p</a>' % i for i in range(200_000))
        + b"</body></html>"
    )
    content = extract_page(page, "https://site.example/")
    assert "bytes" not in content.dropped  # the whole page was read
    assert len(content.links) == MAX_LINKS_PER_PAGE
    assert content.links[0].url.startswith("https://site.example/p/0")
    assert len(normalised) <= MAX_LINKS_PER_PAGE + 1
    assert content.dropped["links"] + content.dropped["candidates"] == 200_000 - len(normalised)
    assert content.dropped["candidates"] == 200_000 - MAX_URL_CANDIDATES


def test_only_the_first_8_mib_of_a_page_is_parsed() -> None:
    page = b'<html><body><img src="/first.jpg">' + b" " * (9 << 20) + b'<img src="/late.jpg">'
    content = extract_page(page, "https://site.example/")
    assert [m.url for m in content.media] == ["https://site.example/first.jpg"]
    assert content.dropped["bytes"] == len(page) - (8 << 20)


def test_media_per_page_and_hosts_per_page_are_capped() -> None:
    page = (
        b"<html><body>"
        + b"".join(b'<img src="https://cdn%d.example/i%d.jpg">' % (i % 100, i) for i in range(5000))
        + b"</body></html>"
    )
    content = extract_page(page, "https://site.example/")
    hosts = {m.url.split("/")[2] for m in content.media}
    assert len(hosts) == MAX_MEDIA_HOSTS_PER_PAGE
    assert len(content.media) == MAX_MEDIA_PER_PAGE
    assert content.dropped["media_hosts"] > 0 and content.dropped["media"] > 0
