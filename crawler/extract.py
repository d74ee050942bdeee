"""What a page points at: media to fingerprint, pages to crawl next, and its text.

Parsed with selectolax (the Lexbor HTML5 parser), which accepts any tag soup the way a
browser does. Every URL comes out absolute and normalized (see crawler.urls); data: and
script URLs are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansim.crawler.urls import normalize_url
from selectolax.lexbor import LexborHTMLParser

MAX_TEXT_CHARS = 200_000
MAX_LINKS_PER_PAGE = 5_000

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


def extract_page(html: bytes | str, page_url: str) -> PageContent:
    """Everything `page_url`'s HTML points at. Malformed markup yields what a browser sees."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    tree = LexborHTMLParser(html)
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = normalize_url(base_node.attributes.get("href") or "", page_url) or page_url

    content = PageContent()
    seen_media: set[str] = set()
    seen_links: set[str] = set()

    def add_media(raw: str | None, source: str) -> None:
        url = normalize_url(raw, base) if raw else None
        if url and url not in seen_media and len(seen_media) < MAX_LINKS_PER_PAGE:
            seen_media.add(url)
            content.media.append(MediaLink(url, source))

    def add_link(raw: str | None, rel: str) -> None:
        url = normalize_url(raw, base) if raw else None
        if url and url not in seen_links and len(seen_links) < MAX_LINKS_PER_PAGE:
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
    for node in tree.css("a[href]"):
        href = node.attributes.get("href")
        url = normalize_url(href, base) if href else None
        if url and looks_like_media_url(url):
            add_media(url, "a")
        elif url:
            add_link(url, "next" if "next" in (node.attributes.get("rel") or "").split() else "a")
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
