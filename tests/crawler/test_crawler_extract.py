"""Extraction of media, links and text from pages, including tag soup."""

from __future__ import annotations

import asyncio

from ansim.crawler.extract import extract_page, largest_srcset_candidate

from tests.crawler_helpers import quick_fetcher

PAGE = """<!doctype html><html><head><title> Gallery  page </title>
<base href="https://site.example/photos/">
<meta property="og:image" content="/og/cover.jpg">
<meta property="og:video:secure_url" content="https://cdn.example/v.mp4">
<meta http-equiv="refresh" content="5; url=/moved">
<link rel="next" href="?page=2"><link rel="stylesheet" href="/style.css">
</head><body>
<p>Hello <b>world</b></p><script>var hidden = "script text";</script><style>p{}</style>
<img src="a.png" srcset="a-320.png 320w, a-1280.png 1280w, a-640.png 640w">
<img src="data:image/png;base64,AAAA"><img src="javascript:alert(1)">
<picture><source srcset="b.webp 1x, b@2x.webp 2x"><img src="b.jpg"></picture>
<video src="clip.webm" poster="poster.jpg"><source src="clip.mp4"></video>
<audio><source src="/sound.ogg"></audio>
<a href="full/size.JPG">full</a> <a href="album.html#top">album</a>
<a href="mailto:x@y.z">mail</a> <a href="album.html">album again</a>
<a rel="next" href="/photos/?page=2">next</a>
</body></html>"""


def test_every_kind_of_media_and_link_is_found() -> None:
    content = extract_page(PAGE, "https://site.example/photos/index.html")
    media = {m.url: m.source for m in content.media}
    assert media == {
        "https://site.example/og/cover.jpg": "og:image",
        "https://cdn.example/v.mp4": "og:video:secure_url",
        "https://site.example/photos/a.png": "img",
        "https://site.example/photos/a-1280.png": "srcset",
        "https://site.example/photos/b@2x.webp": "picture",
        "https://site.example/photos/b.jpg": "img",
        "https://site.example/photos/clip.webm": "video",
        "https://site.example/photos/poster.jpg": "poster",
        "https://site.example/photos/clip.mp4": "source",
        "https://site.example/sound.ogg": "source",
        "https://site.example/photos/full/size.JPG": "a",
    }
    links = {link.url: link.rel for link in content.links}
    assert links == {
        "https://site.example/moved": "refresh",
        "https://site.example/photos/?page=2": "next",
        "https://site.example/photos/album.html": "a",
    }
    assert content.title == "Gallery page"
    assert content.text == "Hello world full album mail album again next"


def test_srcset_picks_the_largest_candidate() -> None:
    assert largest_srcset_candidate("x.png 1x, y.png 3x, z.png 2x") == "y.png"
    assert largest_srcset_candidate("only.png") == "only.png"
    assert largest_srcset_candidate(" ") is None


def test_tag_soup_and_bad_bytes_still_yield_what_a_browser_sees(hostile_site) -> None:
    async def go():
        async with quick_fetcher() as fetcher:
            result = await fetcher.fetch(hostile_site.url("/malformed"))
            return result, result.read_body()

    result, body = asyncio.run(go())
    content = extract_page(body, result.final_url)
    urls = {m.url.rsplit("/", 1)[-1] for m in content.media}
    assert "1.png" in urls and "never.png" not in urls  # script-written markup is not markup
    assert any(link.url.endswith("/trap/0") for link in content.links)
    assert content.text.startswith("unclosed bold italic")


def test_garbage_input_does_not_raise() -> None:
    for junk in (b"", b"\x00\xff" * 1000, "<" * 10000, "<a href='http://[bad'>x</a>"):
        content = extract_page(junk, "http://site.example/")
        assert content.media == []
