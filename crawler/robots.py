"""robots.txt, obeyed by default (parsed by Protego, fetched once per origin per crawl).

Follows RFC 9309 on failures: a 4xx robots.txt means no rules (crawl allowed); a 5xx or
an unreachable server means "assume complete disallow" for this crawl. A host listed in
`ignore_hosts` is crawled regardless, and every such override is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from urllib.parse import urlsplit

from ansim.crawler.fetch import BLOCKED, HTTP_ERROR, OK, Fetcher
from ansim.crawler.urls import DEFAULT_PORTS, host_key
from protego import Protego

log = logging.getLogger("ansim.crawler.robots")

ROBOTS_MAX_BYTES = 512 << 10  # RFC 9309 asks parsers to take at least 500 KiB
ROBOTS_TOKEN = "ansim-crawler"


class _Rules:
    """What one origin's robots.txt said: parsed rules, allow-all, or disallow-all."""

    def __init__(self, parser: Protego | None, allow_all: bool, why: str) -> None:
        self.parser = parser
        self.allow_all = allow_all
        self.why = why

    def refusal(self, url: str, token: str) -> str | None:
        if self.parser is not None:
            return None if self.parser.can_fetch(url, token) else "disallowed by robots.txt"
        return None if self.allow_all else self.why


class RobotsCache:
    def __init__(
        self,
        fetcher: Fetcher,
        token: str = ROBOTS_TOKEN,
        ignore_hosts: set[str] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.token = token
        self.ignore_hosts = {h.lower() for h in (ignore_hosts or set())}
        self._rules: dict[str, asyncio.Task[_Rules]] = {}
        self.counts: Counter[str] = Counter()
        self._override_logged: set[str] = set()

    async def refusal(self, url: str) -> str | None:
        """None when robots.txt lets us fetch `url`, else the reason it does not."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.ignore_hosts:
            self.counts["overridden"] += 1
            if host not in self._override_logged:
                self._override_logged.add(host)
                log.warning("robots.txt of %s ignored by configuration (per-host override)", host)
            return None
        origin = f"{parts.scheme}://{host_key(url)}"
        task = self._rules.get(origin)
        if task is None:
            task = self._rules[origin] = asyncio.ensure_future(self._load(origin, parts.scheme))
        rules = await task
        reason = rules.refusal(url, self.token)
        self.counts["disallowed" if reason else "allowed"] += 1
        return reason

    async def _load(self, origin: str, scheme: str) -> _Rules:
        host, _, port = origin.split("://", 1)[1].rpartition(":")
        netloc = host if int(port) == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
        robots_url = f"{scheme}://{netloc}/robots.txt"
        result = await self.fetcher.fetch(robots_url, max_bytes=ROBOTS_MAX_BYTES)
        try:
            if result.outcome == OK:
                text = result.read_body().decode("utf-8", errors="replace")
                parser = Protego.parse(text)
                delay = parser.crawl_delay(self.token)
                if delay:
                    self.fetcher.politeness.set_crawl_delay(host_key(robots_url), float(delay))
                log.info("robots.txt of %s: %d bytes, crawl-delay %s", origin, result.size, delay)
                return _Rules(parser, allow_all=True, why="")
            if result.outcome == HTTP_ERROR and result.status is not None and result.status < 500:
                return _Rules(None, allow_all=True, why="")
            if result.outcome == BLOCKED:
                # The page fetch will be refused by the same guard, and counted as such.
                return _Rules(None, allow_all=True, why="")
            why = f"robots.txt unreachable ({result.outcome}: {result.error}): RFC 9309 disallow"
            log.warning("%s for %s", why, origin)
            return _Rules(None, allow_all=False, why=why)
        finally:
            result.discard()
