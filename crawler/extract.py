"""What a page points at: media to fingerprint, pages to crawl next, and its text.

Parsed with selectolax (the Lexbor HTML5 parser), which accepts any tag soup the way a
browser does. Every URL comes out absolute and normalized (see crawler.urls); data: and
script URLs are dropped.

Hostile pages are bounded before they cost anything: the nesting depth is measured by a
linear scan of the tags before the parser sees the page (Lexbor's tree building is
quadratic in depth: 100,000 nested `<div>`s took up to 31 s), links and media are capped
before each URL is normalised, and a page's media are capped in number and in hosts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from ansim.crawler.urls import normalize_url
from selectolax.lexbor import LexborHTMLParser

MAX_TEXT_CHARS = 200_000
MAX_LINKS_PER_PAGE = 5_000
# Media a page may hand the crawl, and the hosts they may be on: a page listing thousands
# of media on hundreds of hosts is a spam farm or an attack on the crawl's budget.
MAX_MEDIA_PER_PAGE = 1_000
MAX_MEDIA_HOSTS_PER_PAGE = 20
# URL candidates (attribute values) examined per page, duplicates included: past this the
# rest of the page's URLs are not even normalised.
MAX_URL_CANDIDATES = 20_000
# Browsers stop nesting at 512 (Chromium re-parents deeper elements); real pages stay far
# below. A deeper page is refused before parsing.
MAX_NESTING_DEPTH = 1_000
# Only this much of a page is parsed (a page past it is a dump, not a page to crawl).
MAX_PARSED_BYTES = 8 << 20
# Elements that never hold children (area base br col embed hr img input link meta param
# source track wbr), ones a parser closes when the same tag opens again (`<p>a<p>b` are
# siblings: p li dt dd option optgroup tr td th thead tbody tfoot rb rt rp), and self-closed
# tags: none deepens the tree. Spelled as a trie: sre tries alternatives one by one.
_NON_NESTING = re.compile(
    rb"<(?:/?(?:a(?:rea)|b(?:ase|r)|col|embed|hr|i(?:mg|nput)|l(?:ink|i)|meta|p(?:aram)?"
    rb"|source|t(?:rack|[rdh]|head|body|foot)|wbr|d[td]|opt(?:ion|group)|r[btp])\b[^>]*"
    rb"|[a-zA-Z][^>]*/)>",
    re.I,
)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
_RAW_TEXT = re.compile(rb"<(script|style|textarea|xmp)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_CLOSING_TAG = re.compile(rb"</[a-zA-Z][^>]*>")
_OPENING_TAG = re.compile(rb"<[a-zA-Z][^>]*>")


MEDIA_EXTENSIONS = {
    # images
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "avif", "heic",
    # video
    "mp4", "m4v", "mov", "webm", "mkv", "avi", "wmv", "flv", "mpg", "mpeg", "3gp", "ts",
    # audio
    "mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac", "wma",
}  # fmt: skip
OPEN_GRAPH_MEDIA = {
    "og:image", "og:image:url", "og:image:secure_url",
    "og:video", "og:video:url", "og:video:secure_url",
    "og:audio", "og:audio:url", "og:audio:secure_url",
    "twitter:image", "twitter:image:src", "twitter:player:stream",
}  # fmt: skip
_REFRESH_URL = re.compile(r"""^\s*\d*\.?\d*\s*[;,]?\s*(?:url\s*=\s*)?['"]?([^'"]+)""", re.I)
_SRCSET_CANDIDATE = re.compile(r"\s*([^\s,][^\s]*)(?:\s+([\d.]+)([wx]))?\s*(?:,|$)")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class MediaLink:
    url: str
    source: str  # which markup pointed at it: img, srcset, video, og:image, a...


@dataclass(frozen=True)
class PageLink:
    url: str
    rel: str  # a | next | refresh | iframe


@dataclass
class PageContent:
    title: str = ""
    text: str = ""
    media: list[MediaLink] = field(default_factory=list)
    links: list[PageLink] = field(default_factory=list)
    # What the caps left out, by reason (e.g. {"media_hosts": 37}); empty when nothing was.
    dropped: dict[str, int] = field(default_factory=dict)


class PageRefused(ValueError):
    """The page is not parsed at all (too deeply nested); the message says why."""


def looks_like_media_url(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return "." in path.rsplit("/", 1)[-1] and path.rsplit(".", 1)[-1] in MEDIA_EXTENSIONS


def largest_srcset_candidate(srcset: str) -> str | None:
    """The candidate with the largest width (or density) descriptor: the best copy."""
    best: tuple[float, str] | None = None
    for match in _SRCSET_CANDIDATE.finditer(srcset):
        url, value, _unit = match.groups()
        if not url:
            continue
        try:
            size = float(value) if value else 1.0
        except ValueError:
            size = 1.0
        if best is None or size > best[0]:
            best = (size, url.rstrip(","))
    return best[1] if best else None


def nesting_depth(html: bytes) -> int:
    """How deep the page's elements nest, measured without parsing: every step is a regular
    expression or a numpy pass (linear, in C): about a tenth of a second per MiB.

    Roughly as a parser nests: void elements, self-closed tags, comments and raw text
    (scripts, styles) are left out, and so are the elements a parser closes when the same
    tag opens again (`<p>a<p>b` are siblings); a stray closing tag never goes below zero."""
    text = html.replace(b"(", b" ").replace(b")", b" ")
    text = _COMMENT.sub(b"", text)
    text = _RAW_TEXT.sub(b"", text)
    text = _NON_NESTING.sub(b"", text)
    text = _CLOSING_TAG.sub(b")", text)
    text = _OPENING_TAG.sub(b"(", text)
    steps = np.frombuffer(text, dtype=np.uint8)
    steps = steps[(steps == ord("(")) | (steps == ord(")"))]
    if steps.size == 0:
        return 0
    walk = np.cumsum(np.where(steps == ord("("), 1, -1), dtype=np.int64)
    floor = np.minimum.accumulate(np.minimum(walk, 0))
    return int((walk - floor).max())


def extract_page(html: bytes | str, page_url: str) -> PageContent:
    """Everything `page_url`'s HTML points at. Malformed markup yields what a browser sees.

    Raises PageRefused for a page nested deeper than MAX_NESTING_DEPTH."""
    raw = html.encode("utf-8", errors="replace") if isinstance(html, str) else html
    cut = max(0, len(raw) - MAX_PARSED_BYTES)
    raw = raw[:MAX_PARSED_BYTES]
    depth = nesting_depth(raw)
    if depth > MAX_NESTING_DEPTH:
        raise PageRefused(
            f"page nests its elements more than {MAX_NESTING_DEPTH:,} deep; not parsed "
            "(a parser spends time quadratic in the depth)"
        )
    tree = LexborHTMLParser(raw.decode("utf-8", errors="replace"))
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = normalize_url(base_node.attributes.get("href") or "", page_url) or page_url

    content = PageContent(dropped={"bytes": cut} if cut else {})
    seen_media: set[str] = set()
    media_hosts: set[str] = set()
    seen_links: set[str] = set()
    candidates = 0

    def drop(reason: str) -> None:
        content.dropped[reason] = content.dropped.get(reason, 0) + 1

    def candidate() -> bool:
        """Whether one more raw URL may be normalised (the caps come before the work)."""
        nonlocal candidates
        candidates += 1
        if candidates > MAX_URL_CANDIDATES:
            drop("candidates")
            return False
        return True

    def add_media(raw: str | None, source: str, normalized: str | None = None) -> None:
        if not raw:
            return
        if len(seen_media) >= MAX_MEDIA_PER_PAGE:
            drop("media")
            return
        if normalized is None and not candidate():
            return
        url = normalized or normalize_url(raw, base)
        if not url or url in seen_media:
            return
        host = urlsplit(url).hostname or ""
        if host not in media_hosts and len(media_hosts) >= MAX_MEDIA_HOSTS_PER_PAGE:
            drop("media_hosts")
            return
        media_hosts.add(host)
        seen_media.add(url)
        content.media.append(MediaLink(url, source))

    def add_link(raw: str | None, rel: str, normalized: str | None = None) -> None:
        if not raw:
            return
        if len(seen_links) >= MAX_LINKS_PER_PAGE:
            drop("links")
            return
        if normalized is None and not candidate():
            return
        url = normalized or normalize_url(raw, base)
        if url and url not in seen_links:
            seen_links.add(url)
            content.links.append(PageLink(url, rel))

    for node in tree.css("img"):
        add_media(node.attributes.get("src"), "img")
        add_media(node.attributes.get("data-src"), "img")
        srcset = node.attributes.get("srcset")
        if srcset:
            add_media(largest_srcset_candidate(srcset), "srcset")
    for node in tree.css("picture source[srcset]"):
        add_media(largest_srcset_candidate(node.attributes.get("srcset") or ""), "picture")
    for node in tree.css("video, audio"):
        add_media(node.attributes.get("src"), node.tag)
        if node.tag == "video":
            add_media(node.attributes.get("poster"), "poster")
    for node in tree.css("video source[src], audio source[src]"):
        add_media(node.attributes.get("src"), "source")
    for node in tree.css("meta[property], meta[name]"):
        key = (node.attributes.get("property") or node.attributes.get("name") or "").lower()
        if key in OPEN_GRAPH_MEDIA:
            add_media(node.attributes.get("content"), key)
    for node in tree.css("meta[http-equiv]"):
        if (node.attributes.get("http-equiv") or "").lower() == "refresh":
            found = _REFRESH_URL.match(node.attributes.get("content") or "")
            if found:
                add_link(found.group(1), "refresh")
    for node in tree.css("link[rel][href]"):
        if "next" in (node.attributes.get("rel") or "").lower().split():
            add_link(node.attributes.get("href"), "next")
    anchors = tree.css("a[href]")
    for number, node in enumerate(anchors):
        href = node.attributes.get("href")
        if not href:
            continue
        if not candidate():
            content.dropped["candidates"] += len(anchors) - number - 1
            break
        if len(seen_links) >= MAX_LINKS_PER_PAGE and (
            len(seen_media) >= MAX_MEDIA_PER_PAGE or not looks_like_media_url(href)
        ):
            drop("links")  # nothing it could be is wanted any more: not normalised
            continue
        url = normalize_url(href, base)
        if url and looks_like_media_url(url):
            add_media(url, "a", normalized=url)
        elif url:
            rel = "next" if "next" in (node.attributes.get("rel") or "").split() else "a"
            add_link(url, rel, normalized=url)
    for node in tree.css("iframe[src]"):
        add_link(node.attributes.get("src"), "iframe")

    title_node = tree.css_first("title")
    content.title = _SPACES.sub(" ", title_node.text()).strip()[:500] if title_node else ""
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    body = tree.body
    text = body.text(separator=" ") if body is not None else ""
    content.text = _SPACES.sub(" ", text).strip()[:MAX_TEXT_CHARS]
    return content
