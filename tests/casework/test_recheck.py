"""Re-check outcomes against a local HTTP server, the SSRF guard, and the next-step plan."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from ansim.casework.recheck import (
    REPLACED_REASON,
    MatchCheck,
    Outcome,
    RecheckPolicy,
    classify,
    plan,
    removal_confirmed,
)
from ansim.crawler.fetch import CONNECTION_ERROR, FetchResult
from ansim.pipeline.recheck_service import RecheckFetch

MEDIA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
OTHER_MEDIA = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 8
MEDIA_SHA = hashlib.sha256(MEDIA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
        "/media.png": (200, "image/png", MEDIA, {}),
        "/replaced.png": (200, "image/png", OTHER_MEDIA, {}),
        "/404": (404, "text/html", b"not found", {}),
        "/410": (410, "text/html", b"gone", {}),
        "/451": (451, "text/html", b"legal", {}),
        "/503": (503, "text/html", b"busy", {}),
        "/403": (403, "text/html", b"forbidden", {}),
        "/removed-en": (200, "text/html", b"<p>This content has been removed.</p>", {}),
        "/removed-ko": (200, "text/html; charset=utf-8", "<p>삭제된 게시물입니다</p>".encode(), {}),
        "/moved": (302, "text/html", b"", {"Location": "/media.png"}),
        "/loop": (302, "text/html", b"", {"Location": "/loop"}),
        "/to-private": (302, "text/html", b"", {"Location": "http://10.0.0.1/x"}),
        "/big": (200, "application/octet-stream", b"x" * 200_000, {}),
    }

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/cloaked.png":  # 404 to the checker it recognizes, media to others
            checker = "ansim" in self.headers.get("User-Agent", "").lower()
            self.path = "/404" if checker else "/media.png"
        if self.path == "/slow":
            time.sleep(3)
        status, content_type, body, headers = self.routes.get(
            self.path, (200, "text/plain", b"late", {})
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Safety net: should the guard ever fail, no test may open a non-loopback connection.
    (asyncio connects a non-blocking socket.socket with its `connect`.)"""
    original = socket.socket.connect

    def guarded(sock: socket.socket, address):  # noqa: ANN001, ANN202
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            assert ipaddress.ip_address(address[0]).is_loopback, f"tried to reach {address[0]}"
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


LOCAL = RecheckFetch(timeout_s=2, max_bytes=100_000, allow_loopback=True, min_delay_s=0)


def fetch_and_classify(
    url: str, still_matches: MatchCheck | None = None, fetching: RecheckFetch = LOCAL
) -> tuple[FetchResult, Outcome]:
    """What the re-check service does per URL: the crawler's fetcher, then `classify`."""

    async def run() -> tuple[FetchResult, Outcome]:
        async with fetching.fetcher() as fetcher:
            result = await fetcher.fetch(url)
            return result, classify(result, MEDIA_SHA, still_matches)

    return asyncio.run(run())


def check(server: str, path: str, matches: bool | None = None) -> Outcome:
    still_matches = None if matches is None else (lambda _body_path: matches)
    return fetch_and_classify(server + path, still_matches)[1]


@pytest.mark.parametrize("path", ["/404", "/410", "/451", "/removed-en", "/removed-ko"])
def test_gone_answers(server: str, path: str) -> None:
    assert check(server, path).verdict == "gone"


def test_same_bytes_are_online(server: str) -> None:
    assert check(server, "/media.png") == Outcome("online", "same bytes (SHA-256 equal)")
    assert check(server, "/moved").verdict == "online"  # redirects are followed


def test_replaced_media_is_judged_by_the_matcher(server: str) -> None:
    assert check(server, "/replaced.png", matches=True).verdict == "online"
    # Other bytes prove nothing alone (a host may serve them to a checker it recognizes).
    assert check(server, "/replaced.png", matches=False) == Outcome(
        "unreachable", REPLACED_REASON, replaced=True
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/503", "HTTP 503"),
        ("/403", "HTTP 403"),
        ("/loop", "redirect_loop"),
        ("/big", "too_large"),
        ("/slow", "timeout"),
        ("/to-private", "refused private address 10.0.0.1"),
    ],
)
def test_inconclusive_answers_are_unreachable_not_removed(
    server: str, path: str, reason: str
) -> None:
    outcome = check(server, path, matches=False)
    assert outcome.verdict == "unreachable"
    assert reason in outcome.reason


def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = fetch_and_classify(f"http://127.0.0.1:{port}/x")[1]
    assert outcome.verdict == "unreachable" and outcome.reason.startswith(CONNECTION_ERROR)


def test_loopback_is_refused_unless_allowed(server: str) -> None:
    guarded = RecheckFetch(timeout_s=2, min_delay_s=0)
    result, outcome = fetch_and_classify(server + "/media.png", fetching=guarded)
    assert result.status is None and "refused loopback address 127.0.0.1" in result.error
    assert outcome.verdict == "unreachable"


def test_localhost_name_is_refused_unless_allowed(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    guarded = RecheckFetch(timeout_s=2, min_delay_s=0)
    outcome = fetch_and_classify(f"http://localhost:{port}/media.png", fetching=guarded)[1]
    assert outcome.verdict == "unreachable" and "loopback" in outcome.reason


def test_non_http_urls_are_refused() -> None:
    outcome = fetch_and_classify("file:///etc/passwd")[1]
    assert outcome.verdict == "unreachable" and "not an http(s) URL" in outcome.reason


def test_no_answer_is_unreachable() -> None:
    failed = FetchResult(url="u", outcome=CONNECTION_ERROR, error="boom")
    assert classify(failed, None, None) == Outcome("unreachable", "connection_error: boom")


# --- plan ---------------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
ONLINE, GONE, DOWN = Outcome("online", ""), Outcome("gone", ""), Outcome("unreachable", "")


@pytest.mark.parametrize(
    ("status", "outcome", "hours_since_first", "hours_since_last", "expected"),
    [
        ("notice_sent", GONE, 5, 5, ["removed"]),
        ("still_online", GONE, 30, 5, ["removed"]),
        ("escalated", GONE, 300, 100, ["removed"]),
        ("notice_sent", DOWN, 30, 30, []),
        ("still_online", DOWN, 300, 300, []),
        ("notice_sent", ONLINE, 5, 5, ["still_online"]),
        ("notice_sent", ONLINE, 23.9, 23.9, ["still_online", "notice_sent"]),  # cron slack
        ("still_online", ONLINE, 30, 30, ["notice_sent"]),
        ("still_online", ONLINE, 30, 2, []),
        ("still_online", ONLINE, 7 * 24, 24, ["escalated"]),
        ("notice_sent", ONLINE, 8 * 24, 1, ["still_online", "escalated"]),
        ("escalated", ONLINE, 300, 300, []),
    ],
)
def test_plan(
    status: str,
    outcome: Outcome,
    hours_since_first: float,
    hours_since_last: float,
    expected: list[str],
) -> None:
    now = T0 + timedelta(days=30)
    first = now - timedelta(hours=hours_since_first)
    last = now - timedelta(hours=hours_since_last)
    assert plan(status, outcome, first, last, now, RecheckPolicy()) == expected


def test_a_host_that_hides_content_from_the_checker_is_not_believed(server: str) -> None:
    """Re-checks fetch as an ordinary browser: the host's 404 for the checker never shows."""
    assert check(server, "/cloaked.png").verdict == "online"
    named = RecheckFetch(
        timeout_s=2, allow_loopback=True, min_delay_s=0, user_agent="ansim-recheck/0.1"
    )
    assert fetch_and_classify(server + "/cloaked.png", fetching=named)[1].verdict == "gone"


DAY = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("earlier", "now", "confirmed"),
    [
        ([], DAY, False),  # one gone answer
        ([(DAY - timedelta(hours=1), "gone")], DAY, False),  # twice, but the same day
        ([(DAY - timedelta(days=1), "gone")], DAY, True),
        ([(DAY - timedelta(days=2), "gone"), (DAY - timedelta(days=1), "unreachable")], DAY, True),
        ([(DAY - timedelta(days=2), "gone"), (DAY - timedelta(days=1), "online")], DAY, False),
        ([(DAY - timedelta(days=3), "online"), (DAY - timedelta(days=2), "gone")], DAY, True),
    ],
)
def test_removal_needs_gone_answers_on_two_days(
    earlier: list[tuple[datetime, str]], now: datetime, confirmed: bool
) -> None:
    assert removal_confirmed(earlier, now, RecheckPolicy()) is confirmed
    assert removal_confirmed(earlier, now, RecheckPolicy(gone_days_required=1)) is True
