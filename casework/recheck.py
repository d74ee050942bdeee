"""Re-checks: is reported content still online, and what happens to its queue item next.

`classify` turns one fetch into gone / online / unreachable; `plan` turns that outcome and
the item's notice history into the transitions to make. Unreachable is never gone: a host
that is down or blocks us has not removed anything we can verify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ansim.casework.lifecycle import as_utc
from ansim.crawler.fetch import HTTP_ERROR, OK, FetchResult

GONE_STATUSES = (404, 410, 451)

# Phrases of "this was removed" pages served with 200. Lower case; matched in the body.
REMOVED_PAGE_MARKERS = (
    "this content has been removed",
    "this content is no longer available",
    "content not available",
    "this post has been deleted",
    "this video has been removed",
    "removed for violating",
    "삭제된 게시물",
    "게시물이 삭제",
    "삭제되었습니다",
    "존재하지 않는 게시물",
)

# Of a body this long, a removal page says so.
REMOVED_PAGE_SCAN_BYTES = 512 * 1024

# `still_matches(body_path)` answers: does the media at the URL still match the reference?
MatchCheck = Callable[[Path], bool]


@dataclass(frozen=True)
class Outcome:
    verdict: str  # gone | online | unreachable
    reason: str
    # 200 with other bytes: a host may serve anything to a re-checker it recognizes, so
    # that alone proves nothing; it is "gone" only when the page that showed it is gone too.
    replaced: bool = False


REPLACED_REASON = "other media at the URL, the page that showed it is still up (inconclusive)"


def classify(
    result: FetchResult, known_sha256: str | None, still_matches: MatchCheck | None
) -> Outcome:
    """`result` comes from the crawler's `Fetcher`; its body file must still be there."""
    status = result.status
    if result.outcome not in (OK, HTTP_ERROR) or status is None:
        # No HTTP answer, or one cut short (too large, timed out, refused address...).
        return Outcome("unreachable", f"{result.outcome}: {result.error or 'no answer'}")
    if status in GONE_STATUSES:
        return Outcome("gone", f"HTTP {status}")
    if not 200 <= status < 300 or result.body_path is None:
        return Outcome("unreachable", f"HTTP {status} (inconclusive)")
    if known_sha256 and result.sha256 == known_sha256:
        return Outcome("online", "same bytes (SHA-256 equal)")
    if _looks_like_removed_page(result):
        return Outcome("gone", "removal page")
    if still_matches is not None and still_matches(result.body_path):
        return Outcome("online", "media still matches the reference")
    return Outcome("unreachable", REPLACED_REASON, replaced=True)


def page_gone(page: FetchResult) -> bool:
    """Is the page that embedded the media gone (404/410/451, or a removal page)?"""
    return classify(page, None, None).verdict == "gone"


def removal_confirmed(
    earlier: list[tuple[datetime, str]], now: datetime, policy: RecheckPolicy
) -> bool:
    """A `gone` now removes the item only when the re-checks before it, newest first and
    skipping unreachable ones, were `gone` too on enough different days: one gone answer
    (a host cloaking the checker, a brief outage page) is not a removal."""
    days = {as_utc(now).date()}
    for checked_at, verdict in sorted(earlier, reverse=True):
        if verdict == "unreachable":
            continue
        if verdict != "gone":
            break
        days.add(as_utc(checked_at).date())
    return len(days) >= policy.gone_days_required


def _looks_like_removed_page(result: FetchResult) -> bool:
    content_type = (result.content_type or "").lower()
    if not content_type.startswith(("text/", "application/xhtml")):
        return False
    text = result.read_body(REMOVED_PAGE_SCAN_BYTES).decode("utf-8", errors="replace").lower()
    return any(marker in text for marker in REMOVED_PAGE_MARKERS)


@dataclass(frozen=True)
class RecheckPolicy:
    resend_after: timedelta = timedelta(hours=24)
    escalate_after: timedelta = timedelta(days=7)
    # A nightly cron that starts a few minutes earlier than the night before still resends.
    slack: timedelta = timedelta(hours=1)
    # Consecutive `gone` re-checks, on this many different days, before `removed`.
    gone_days_required: int = 2


def plan(
    status: str,
    outcome: Outcome,
    first_notice_at: datetime,
    last_notice_at: datetime,
    now: datetime,
    policy: RecheckPolicy = RecheckPolicy(),
) -> list[str]:
    """The statuses to move through, in order (empty: stay). A trailing `notice_sent` means
    the notice must be re-sent, and only recorded once the mail server took it."""
    if outcome.verdict == "unreachable":
        return []
    if outcome.verdict == "gone":
        return ["removed"]
    if status == "escalated":
        return []
    steps = ["still_online"] if status == "notice_sent" else []
    now = as_utc(now)
    if now - as_utc(first_notice_at) >= policy.escalate_after - policy.slack:
        return [*steps, "escalated"]
    if now - as_utc(last_notice_at) >= policy.resend_after - policy.slack:
        return [*steps, "notice_sent"]
    return steps
