"""`ansim queue recheck`: fetch every notified URL, record what is there, move items on.

Made for a nightly cron: gone -> `removed`; still there -> `still_online`, re-sent after the
resend interval, `escalated` after the escalation age; unreachable -> recorded, no change
(a host that is down has not removed anything we could verify). Each fetch happens outside
any transaction; the result is written under the item's row lock, and only if the item is
still awaiting removal (another re-check or analyst may have moved it meanwhile).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp.abc import AbstractResolver
from ansim.casework.lifecycle import AWAITING_REMOVAL
from ansim.casework.notice_service import draft, send
from ansim.casework.notices import Sender
from ansim.casework.queue import get_item, transition
from ansim.casework.recheck import MatchCheck, Outcome, RecheckPolicy, classify, plan
from ansim.casework.smtp import SmtpSettings
from ansim.casework.workspace import Workspace
from ansim.crawler.fetch import Fetcher, FetchLimits, FetchResult
from ansim.crawler.guard import AddressPolicy
from ansim.crawler.politeness import Politeness, PolitenessConfig
from ansim.detector.errors import MediaError
from ansim.pipeline.matching import find_matches
from ansim.signal_types.hashing import hash_file
from ansim.store import audit
from ansim.store.tables import Recheck, ScannedItem, Takedown, TakedownEvent, utcnow
from sqlalchemy import func, select

ALLOW_LOOPBACK_ENV = "ANSIM_FETCH_ALLOW_LOOPBACK"
USER_AGENT = "ansim-recheck/0.1 (takedown verification)"


@dataclass(frozen=True)
class RecheckFetch:
    """How re-checks fetch: the crawler's `Fetcher` behind its SSRF guard, one URL at a time.

    One attempt per URL (tomorrow night's run is the retry; unreachable changes nothing).
    """

    timeout_s: float = 15.0  # connect, read silence, and the whole request
    max_bytes: int = 64 << 20
    max_redirects: int = 5
    allow_loopback: bool = False
    # Between two requests to one host (the crawler's politeness floor).
    min_delay_s: float = 0.25
    # The resolver behind the guard (default: the system's); simulations pin names with it.
    dns: AbstractResolver | None = None

    def fetcher(self) -> Fetcher:
        limits = FetchLimits(
            connect_timeout_s=self.timeout_s,
            read_timeout_s=self.timeout_s,
            total_timeout_s=self.timeout_s,
            max_redirects=self.max_redirects,
            max_bytes=self.max_bytes,
            retries=0,
        )
        return Fetcher(
            limits=limits,
            policy=AddressPolicy(allow_loopback=self.allow_loopback),
            politeness=Politeness(PolitenessConfig(min_delay_s=self.min_delay_s)),
            user_agent=USER_AGENT,
            dns=self.dns,
        )


def fetch_from_env(timeout_s: float = 15.0) -> RecheckFetch:
    return RecheckFetch(
        timeout_s=timeout_s, allow_loopback=os.environ.get(ALLOW_LOOPBACK_ENV) == "1"
    )


@dataclass
class RecheckResult:
    checked: list[dict[str, Any]] = field(default_factory=list)
    resend_due: list[int] = field(default_factory=list)
    resent: list[dict[str, Any]] = field(default_factory=list)
    resend_failed: list[dict[str, Any]] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.checked if c["verdict"] == verdict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "gone": self.count("gone"),
            "online": self.count("online"),
            "unreachable": self.count("unreachable"),
            "resend_due": self.resend_due,
            "resent": self.resent,
            "resend_failed": self.resend_failed,
        }


def recheck(
    workspace: Workspace,
    fetching: RecheckFetch,
    policy: RecheckPolicy = RecheckPolicy(),
    smtp: SmtpSettings | None = None,
    sender: Sender | None = None,
    now: datetime | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
) -> RecheckResult:
    result = RecheckResult()
    with workspace.session() as session:
        due = list(
            session.execute(
                select(Takedown.id)
                .where(Takedown.status.in_(AWAITING_REMOVAL), Takedown.location.contains("://"))
                .order_by(Takedown.id)
            ).scalars()
        )
    asyncio.run(_check_all(workspace, due, fetching, policy, now, on_item, result))
    if result.resend_due and smtp is not None and sender is not None:
        drafted = draft(
            workspace, sender, statuses=("still_online",), takedown_ids=result.resend_due, now=now
        )
        sent = send(workspace, smtp, notice_ids=drafted.notice_ids, now=now)
        result.resent, result.resend_failed = sent.sent, sent.failed + drafted.skipped
    return result


async def _check_all(
    workspace: Workspace,
    due: list[int],
    fetching: RecheckFetch,
    policy: RecheckPolicy,
    now: datetime | None,
    on_item: Callable[[dict[str, Any]], None] | None,
    result: RecheckResult,
) -> None:
    """One URL after another: the store work in between is short and synchronous."""
    async with fetching.fetcher() as fetcher:
        for takedown_id in due:
            checked = await _recheck_one(workspace, fetcher, takedown_id, policy, now)
            if checked is None:
                continue
            result.checked.append(checked)
            if checked.pop("resend"):
                result.resend_due.append(takedown_id)
            if on_item:
                on_item(checked)


async def _recheck_one(
    workspace: Workspace,
    fetcher: Fetcher,
    takedown_id: int,
    policy: RecheckPolicy,
    now: datetime | None,
) -> dict[str, Any] | None:
    with workspace.session() as session:
        takedown = get_item(session, takedown_id)
        url, reference_id = takedown.location, takedown.reference_id
        known_sha256 = session.execute(
            select(ScannedItem.sha256).where(ScannedItem.id == takedown.item_id)
        ).scalar()
    fetched = await fetcher.fetch(url)
    try:
        outcome = classify(fetched, known_sha256, _matcher(workspace, reference_id))
    finally:
        fetched.discard()
    return _record(workspace, takedown_id, fetched, outcome, policy, now)


def _matcher(workspace: Workspace, reference_id: int) -> MatchCheck:
    """Does this body still match the item's reference, by the same pipeline as a scan?"""

    def still_matches(body_path: Path) -> bool:
        try:
            signals = hash_file(body_path)
        except MediaError:
            return False  # not media any more (a page, an error text): no match
        with workspace.store.session() as session:
            findings = find_matches(session, workspace.banks, signals)
        return any(finding.reference_id == reference_id for finding in findings)

    return still_matches


def _record(
    workspace: Workspace,
    takedown_id: int,
    fetched: FetchResult,
    outcome: Outcome,
    policy: RecheckPolicy,
    now: datetime | None,
) -> dict[str, Any] | None:
    moment = now or utcnow()
    with workspace.session() as session:
        takedown = get_item(session, takedown_id, for_update=True)
        if takedown.status not in AWAITING_REMOVAL:
            return None  # moved on while we fetched (another re-check, a purge)
        before = takedown.status
        session.add(
            Recheck(
                takedown_id=takedown.id,
                checked_at=moment,
                verdict=outcome.verdict,
                reason=outcome.reason,
                http_status=fetched.status,
                # Set only when redirects were followed.
                final_url=fetched.final_url if len(fetched.exchanges) > 1 else None,
                actor=workspace.actor,
            )
        )
        first, last = session.execute(
            select(func.min(TakedownEvent.at), func.max(TakedownEvent.at)).where(
                TakedownEvent.takedown_id == takedown.id, TakedownEvent.to_status == "notice_sent"
            )
        ).one()
        steps = plan(before, outcome, first or moment, last or moment, moment, policy)
        resend = bool(steps) and steps[-1] == "notice_sent"
        for status in steps[:-1] if resend else steps:
            transition(
                session, takedown, status, workspace.actor, f"re-check: {outcome.reason}", now
            )
        audit.record(
            session,
            workspace.actor,
            "queue.recheck",
            f"takedown:{takedown.id}",
            {"verdict": outcome.verdict, "reason": outcome.reason, "http": fetched.status},
        )
        return {
            "id": takedown.id,
            "url": takedown.location,
            "verdict": outcome.verdict,
            "reason": outcome.reason,
            "before": before,
            "after": takedown.status,
            "resend": resend,
        }
