"""URL normalization (one spelling per resource, so the visited set de-duplicates) and
crawl scope (which hosts a crawl may leave its seeds for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit, urlunsplit

import tldextract
from w3lib.url import canonicalize_url

MAX_URL_CHARS = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
SCOPE_MODES = ("same-site", "allow-list")

# The public-suffix snapshot bundled with tldextract: never fetched at run time.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def normalize_url(url: str, base: str | None = None) -> str | None:
    """The canonical form of `url` (resolved against `base`), or None when it is not a
    crawlable http(s) URL.

    Lower-cased scheme and host, IDN hosts in punycode, default port and user info
    dropped, dot segments resolved, percent-encoding made uniform, query arguments
    sorted, fragment removed.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS:
        return None
    try:
        absolute = urljoin(base, url) if base else url
        parts = urlsplit(absolute)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        host = parts.hostname.rstrip(".")
        port = parts.port
    except ValueError:  # bad port, bad IPv6 literal
        return None
    if not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    try:
        canonical = canonicalize_url(rebuilt, keep_fragments=False)
    except (ValueError, UnicodeError):
        return None
    return canonical if len(canonical) <= MAX_URL_CHARS else None


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def host_key(url: str) -> str:
    """The politeness unit: host and port (two ports of one host are two servers)."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{(parts.hostname or '').lower()}:{port}"


@lru_cache(maxsize=65536)
def site_of(host: str) -> str:
    """The registrable domain of `host` (example.co.uk for a.b.example.co.uk); IPs and
    single-label names are their own site."""
    extracted = _SUFFIXES(host)
    return extracted.top_domain_under_public_suffix or host


@dataclass
class Scope:
    """Which URLs a crawl may follow.

    same-site: the registrable domains of the seeds, plus any `allow_hosts` (and their
    subdomains). allow-list: only `allow_hosts` and their subdomains.
    """

    mode: str = "same-site"
    allow_hosts: set[str] = field(default_factory=set)
    seed_sites: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.mode not in SCOPE_MODES:
            raise ValueError(f"scope must be one of {', '.join(SCOPE_MODES)}, not {self.mode!r}")
        self.allow_hosts = {h.lower().rstrip(".") for h in self.allow_hosts}

    def add_seed(self, url: str) -> None:
        self.seed_sites.add(site_of(host_of(url)))

    def allows(self, url: str) -> bool:
        host = host_of(url)
        if not host:
            return False
        if any(host == h or host.endswith("." + h) for h in self.allow_hosts):
            return True
        return self.mode == "same-site" and site_of(host) in self.seed_sites
