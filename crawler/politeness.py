"""Per-host politeness: a cap on concurrent requests, a delay between request starts,
and an adaptive throttle that slows down when a host gets slow or says so (429/503 with
Retry-After) and speeds back up, never below the configured floor, when it recovers.

The adaptive rule follows the AutoThrottle idea: a host that answers in L seconds can
serve `target_concurrency` requests at once from us if we start one every
L / target_concurrency seconds; the delay moves half-way towards that each response
when it grows, and by at most 10 % per response when it shrinks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class PolitenessConfig:
    concurrency_per_host: int = 2
    min_delay_s: float = 0.25
    max_delay_s: float = 60.0
    target_concurrency: float = 2.0
    # Applied when a host answers 429/503 without a usable Retry-After.
    backoff_factor: float = 2.0
    # Per good response, the delay shrinks to no less than this share of itself.
    recovery_factor: float = 0.9


class HostThrottle:
    """The politeness state of one host (host:port)."""

    def __init__(self, config: PolitenessConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency_per_host)
        self._start_lock = asyncio.Lock()
        self.delay_s = config.min_delay_s
        self.crawl_delay_s = 0.0  # from robots.txt Crawl-delay
        self._next_start = 0.0
        self.requests = 0
        self.throttled = 0

    @property
    def floor_s(self) -> float:
        return max(self.config.min_delay_s, self.crawl_delay_s)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the host's connections; starts are spaced by the current delay."""
        async with self._slots:
            async with self._start_lock:
                wait = self._next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start = time.monotonic() + self.delay_s
                self.requests += 1
            yield

    def record_response(self, latency_s: float, status: int) -> None:
        if status in (429, 503):
            self.throttled += 1
            self.delay_s = min(
                self.config.max_delay_s,
                max(self.delay_s * self.config.backoff_factor, self.floor_s * 2, 0.5),
            )
            return
        target = latency_s / self.config.target_concurrency
        proposed = (self.delay_s + target) / 2
        # Slow down at once, speed up gently: a host that just pushed back gets time.
        proposed = max(proposed, self.delay_s * self.config.recovery_factor)
        if status >= 500:
            # An erroring host must not be sped up by its fast error pages.
            proposed = max(proposed, self.delay_s)
        self.delay_s = min(self.config.max_delay_s, max(self.floor_s, proposed))

    def record_failure(self) -> None:
        """A timeout or a dropped connection: back off as for an overloaded host."""
        self.delay_s = min(self.config.max_delay_s, max(self.delay_s * 1.5, self.floor_s))

    def hold_off(self, seconds: float) -> None:
        """Start nothing on this host for `seconds` (a Retry-After)."""
        self._next_start = max(self._next_start, time.monotonic() + seconds)


class Politeness:
    """The throttles of every host seen, created on first use."""

    def __init__(self, config: PolitenessConfig | None = None) -> None:
        self.config = config or PolitenessConfig()
        self._hosts: dict[str, HostThrottle] = {}

    def host(self, key: str) -> HostThrottle:
        throttle = self._hosts.get(key)
        if throttle is None:
            throttle = self._hosts[key] = HostThrottle(self.config)
        return throttle

    def set_crawl_delay(self, key: str, seconds: float) -> None:
        throttle = self.host(key)
        throttle.crawl_delay_s = min(seconds, self.config.max_delay_s)
        throttle.delay_s = max(throttle.delay_s, throttle.floor_s)

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {
            key: {"delay_s": round(t.delay_s, 3), "requests": t.requests, "throttled": t.throttled}
            for key, t in self._hosts.items()
        }
