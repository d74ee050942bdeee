"""Sessions, CSRF tokens, sign-in throttling and per-account rate limits, all in memory.

Sessions live in this process only: a restart signs everyone out, and an idle session
ends after `idle_timeout`. The cookie carries a random id, never anything about the
person; the CSRF token is per session and checked on every state-changing form.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "ansim_session"
LOGIN_CSRF_COOKIE = "ansim_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_SESSION_S = 12 * 3600


@dataclass
class SessionState:
    account_id: int
    name: str
    csrf: str
    created: float
    last_seen: float
    reveals: int = 0  # reveals this shift (this session)


@dataclass
class Sessions:
    idle_timeout_s: float = 30 * 60
    _by_id: dict[str, SessionState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, account_id: int, name: str) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._by_id[session_id] = SessionState(
                account_id, name, secrets.token_urlsafe(32), now, now
            )
        return session_id

    def get(self, session_id: str | None) -> SessionState | None:
        """The live session, its idle clock restarted; None once idle or too old."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            state = self._by_id.get(session_id)
            if state is None:
                return None
            if now - state.last_seen > self.idle_timeout_s or now - state.created > MAX_SESSION_S:
                del self._by_id[session_id]
                return None
            state.last_seen = now
            return state

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def end_all_of(self, account_id: int) -> None:
        with self._lock:
            for key in [k for k, s in self._by_id.items() if s.account_id == account_id]:
                del self._by_id[key]


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())  # type: ignore[union-attr]


@dataclass
class LoginThrottle:
    """At most `attempts` failed sign-ins per source address per `window_s`."""

    attempts: int = 10
    window_s: float = 600
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, source: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(source, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def allowed(self, source: str) -> bool:
        with self._lock:
            return len(self._recent(source, time.monotonic())) < self.attempts

    def failed(self, source: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(source, now).append(now)

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._failures.pop(source, None)


@dataclass
class RateLimiter:
    """A token bucket per account: `rate` requests a second, bursts up to `burst`."""

    rate: float = 50.0
    burst: float = 100.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float:
        """0 when allowed, else the seconds to wait."""
        with self._lock:
            now = time.monotonic()
            tokens, stamp = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


@dataclass
class RevealTickets:
    """Single-use permissions to fetch one unveiled picture, valid for `ttl_s`."""

    ttl_s: float = 30
    _tickets: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, takedown_id: int, account_id: int) -> str:
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            for key in [k for k, (_, _, at) in self._tickets.items() if now - at > self.ttl_s]:
                del self._tickets[key]
            self._tickets[ticket] = (takedown_id, account_id, now)
        return ticket

    def redeem(self, ticket: str, takedown_id: int, account_id: int) -> bool:
        with self._lock:
            held = self._tickets.pop(ticket, None)
        if held is None:
            return False
        held_item, held_account, at = held
        fresh = time.monotonic() - at <= self.ttl_s
        return fresh and held_item == takedown_id and held_account == account_id
