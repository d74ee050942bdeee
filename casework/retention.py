"""Closing a case, and purging everything that identifies it once the support has ended.

`close` ends the case: no more notices are drafted for it and it takes no new references.
`close --purge` deletes, for everything that belongs only to the case:
- the victim's contact details, pseudonym, service notes, reference labels;
- every signal of its references and of the items matched only to it, in the store and
  in every index (the reference bank and the crawl history);
- those items' URLs and digests, the crawl frontier rows that fetched them or the pages
  they were on (URL, final URL, SHA-256, IP), their entries in crawl run summaries;
- the error log (its tracebacks' messages are sealed, but may quote any case);
- evidence rows and sealed bundles: the bundle's own key is in the row and goes with it
  (crypto-shredding), then the files are unlinked;
- confirmation notes, status-change notes, re-check details, notice texts and the notice
  files written to disk (.eml, regulator CSV);
- the free text of its audit entries (the chain holds only their keyed hashes, so it
  still verifies).
SQLite zeroes deleted content (secure_delete) and the WAL is checkpointed and truncated
afterwards. On PostgreSQL, dead row versions stay in the table files until VACUUM (and in
WAL segments until they are recycled): see VACUUM_NOTE.

What stays is what the center's yearly figures need: case type, dates, services (kinds,
without notes), queue items with their hosts and status history. The audit log records
what was deleted, counted, never the content. Crawl logs name queue item ids, never URLs.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ansim.casework.cases import get_case
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import shred_bundle
from ansim.store import audit
from ansim.store.error_log import clear_error_log
from ansim.store.tables import (
    AuditPrivate,
    Confirmation,
    CrawlRun,
    CrawlUrl,
    Evidence,
    Match,
    Notice,
    NoticeFile,
    NoticeTakedown,
    Recheck,
    Reference,
    ScannedItem,
    Takedown,
    TakedownEvent,
    utcnow,
)
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

PURGED = "purged"
VACUUM_NOTE = (
    "PostgreSQL keeps the old versions of purged rows in the table files until VACUUM "
    "reuses their space (VACUUM FULL rewrites the table at once), and in WAL segments "
    "until they are recycled; run `VACUUM FULL` on the listed tables when a purge must "
    "leave no bytes behind."
)


def close_case(
    workspace: Workspace, case_id: str, purge: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    moment = now or utcnow()
    plan = _PurgePlan()
    with workspace.session() as session:
        case = get_case(session, case_id)
        session.refresh(case, with_for_update=True)
        if case.purged_at is not None:
            raise CaseworkError(f"case {case_id} was already purged on {case.purged_at:%Y-%m-%d}")
        if case.status == "closed" and not purge:
            raise CaseworkError(f"case {case_id} is already closed (add --purge to purge it)")
        was_closed = case.status == "closed"
        case.status = "closed"
        case.closed_at = case.closed_at or moment
        deleted: dict[str, Any] = {}
        if purge:
            deleted = _purge(session, case_id, plan)
            deleted["contact"] = case.contact_encrypted is not None
            deleted["pseudonym"] = (case.pseudonym or case.pseudonym_encrypted) is not None
            case.contact_encrypted = None
            case.pseudonym = case.pseudonym_encrypted = None
            case.purged_at = moment
        audit.record(
            session,
            workspace.actor,
            "case.purge" if purge else "case.close",
            case_id,
            {"already_closed": was_closed, "deleted": deleted},
        )
    if not purge:
        return {"case_id": case_id, "status": "closed", "purged": False, "deleted": {}}
    # Store first, files and indexes second: a crash in between leaves files whose keys
    # are gone already (unreadable) and indexes that disagree with the store, which the
    # banks rebuild on their next use.
    deleted["evidence_files"] = sum(
        shred_bundle(workspace.home.evidence_dir, bundle) for bundle in sorted(plan.bundles)
    )
    deleted["notice_files"] = _unlink(plan.notice_files)
    # Tracebacks cannot be told apart by case, and a message may quote this one's data.
    deleted["error_log"] = clear_error_log(workspace.home.log_dir)
    index_entries_removed = workspace.banks.remove(plan.reference_signals, erase=True)
    index_entries_removed += workspace.history.remove(plan.item_signals, erase=True)
    checkpointed = workspace.store.flush_deleted()
    result: dict[str, Any] = {
        "case_id": case_id,
        "status": "closed",
        "purged": True,
        "deleted": deleted,
        "index_entries_removed": index_entries_removed,
    }
    if checkpointed is None:
        result["until_vacuum"] = VACUUM_NOTE
    elif not checkpointed:
        result["warning"] = (
            "another process held the database open: old page versions stay in the WAL "
            "until its next checkpoint (close other ansim processes and run the purge's "
            "checkpoint with `sqlite3 ansim.db 'PRAGMA wal_checkpoint(TRUNCATE)'`)"
        )
    return result


class _PurgePlan:
    """What a purge removes after its transaction commits (files, index entries)."""

    def __init__(self) -> None:
        self.reference_signals: dict[str, list[int]] = {}
        self.item_signals: dict[str, list[int]] = {}
        self.bundles: set[str] = set()
        self.notice_files: set[str] = set()


def _purge(session: Session, case_id: str, plan: _PurgePlan) -> dict[str, Any]:
    references = list(
        session.execute(select(Reference).where(Reference.case_id == case_id)).scalars()
    )
    reference_ids = [r.id for r in references]
    for reference in references:
        for signal in reference.signals:
            plan.reference_signals.setdefault(signal.kind, []).append(signal.id)
        reference.signals.clear()
        reference.label = reference.label_encrypted = None

    takedowns = list(session.execute(select(Takedown).where(Takedown.case_id == case_id)).scalars())
    takedown_ids = [t.id for t in takedowns]
    matched_items = _items_only_this_case_matched(session, reference_ids)
    evidence = list(
        session.execute(
            select(Evidence).where(
                or_(
                    Evidence.takedown_id.in_(takedown_ids),
                    Evidence.item_id.in_([i.id for i in matched_items]),
                )
            )
        ).scalars()
    )
    urls = {t.location for t in takedowns} | {i.location for i in matched_items}
    urls |= {e.media_url for e in evidence} | {e.page_url for e in evidence if e.page_url}
    frontier = _frontier_rows(session, [i.id for i in matched_items], urls)
    urls |= {row.url for row in frontier} | {row.final_url for row in frontier if row.final_url}
    # Items nobody else matched that were fetched from those URLs: the pages the media
    # was on (their text was fingerprinted) or earlier fetches of the same URL.
    items = matched_items + _unmatched_items_at(session, urls, {i.id for i in matched_items})
    for item in items:
        for signal in item.signals:
            plan.item_signals.setdefault(signal.kind, []).append(signal.id)
        item.signals.clear()
        item.location = f"{PURGED}:item/{item.id}"
        item.sha256 = item.md5 = item.mime = item.error = item.size = None

    evidence_ids = [e.id for e in evidence]
    for row in evidence:
        session.delete(row)  # the bundle's key goes with its rows
    session.flush()
    still_used = set(
        session.execute(
            select(Evidence.bundle_id).where(
                Evidence.bundle_id.in_({e.bundle_id for e in evidence}),
                Evidence.id.not_in(evidence_ids),
            )
        ).scalars()
    )
    plan.bundles = {e.bundle_id for e in evidence} - still_used
    frontier_rows = len(frontier)
    for row in frontier:
        session.delete(row)
    runs = _scrub_crawl_runs(session, set(takedown_ids), urls)

    for takedown in takedowns:
        takedown.location = f"{PURGED}:takedown/{takedown.id}"
        takedown.reason = takedown.public_ref = None
    for event in session.execute(
        select(TakedownEvent).where(TakedownEvent.takedown_id.in_(takedown_ids))
    ).scalars():
        event.note = None  # notes quote URLs and addresses
    for check in session.execute(
        select(Recheck).where(Recheck.takedown_id.in_(takedown_ids))
    ).scalars():
        check.final_url, check.reason = None, ""
    confirmation_notes = 0
    for confirmation in session.execute(
        select(Confirmation).where(Confirmation.takedown_id.in_(takedown_ids))
    ).scalars():
        confirmation_notes += (confirmation.note or confirmation.note_encrypted) is not None
        confirmation.note = confirmation.note_encrypted = None
    for match in session.execute(
        select(Match).where(Match.reference_id.in_(reference_ids))
    ).scalars():
        match.explanation, match.region = "", None
    notices = list(
        session.execute(
            select(Notice)
            .join(NoticeTakedown, NoticeTakedown.notice_id == Notice.id)
            .where(NoticeTakedown.takedown_id.in_(takedown_ids))
        )
        .scalars()
        .unique()
    )
    for notice in notices:
        notice.message = None  # the text lists the URLs; ref, host and date stay
    notice_files = list(
        session.execute(
            select(NoticeFile).where(NoticeFile.notice_id.in_([n.id for n in notices]))
        ).scalars()
    )
    plan.notice_files = {f.path for f in notice_files}
    for notice_file in notice_files:
        session.delete(notice_file)
    case = get_case(session, case_id)
    for service in case.services:
        service.note, service.note_encrypted = "", None
    audit_details = session.execute(
        delete(AuditPrivate).where(AuditPrivate.case_id == case_id)
    ).rowcount
    return {
        "reference_signals": sum(map(len, plan.reference_signals.values())),
        "references": len(references),
        "item_signals": sum(map(len, plan.item_signals.values())),
        "items": len(items),
        "evidence_rows": len(evidence),
        "evidence_bundles": len(plan.bundles),
        "frontier_rows": frontier_rows,
        "crawl_runs_scrubbed": runs,
        "takedown_urls": len(takedowns),
        "confirmation_notes": confirmation_notes,
        "notice_messages": len(notices),
        "audit_details": audit_details,
    }


def _frontier_rows(session: Session, item_ids: list[int], urls: set[str]) -> list[CrawlUrl]:
    """Crawl frontier rows that fetched these items or these URLs, and the pages that
    linked to them (the referrers, i.e. where the media was found)."""
    rows = {
        row.id: row
        for row in session.execute(
            select(CrawlUrl).where(
                or_(
                    CrawlUrl.item_id.in_(item_ids),
                    CrawlUrl.url.in_(urls),
                    CrawlUrl.final_url.in_(urls),
                )
            )
        ).scalars()
    }
    referrers = {r.referrer_id for r in rows.values() if r.referrer_id} - set(rows)
    if referrers:
        for row in session.execute(select(CrawlUrl).where(CrawlUrl.id.in_(referrers))).scalars():
            rows[row.id] = row
    return list(rows.values())


def _unmatched_items_at(session: Session, urls: set[str], skip: set[int]) -> list[ScannedItem]:
    """Items fetched from `urls` that no reference matched (so no other case needs them)."""
    if not urls:
        return []
    matched_elsewhere = select(Match.item_id)
    return [
        item
        for item in session.execute(
            select(ScannedItem).where(
                ScannedItem.location.in_(urls), ScannedItem.id.not_in(matched_elsewhere)
            )
        ).scalars()
        if item.id not in skip
    ]


def _scrub_crawl_runs(session: Session, takedown_ids: set[int], urls: set[str]) -> int:
    """Take the case's matches out of crawl run summaries, and its URLs out of seeds."""
    scrubbed = 0
    for run in session.execute(select(CrawlRun)).scalars():
        summary = json.loads(run.summary or "{}")
        options = json.loads(run.options or "{}")
        listed = summary.get("match_list") or []
        kept = [
            m
            for m in listed
            if m.get("takedown_id") not in takedown_ids and m.get("url") not in urls
        ]
        seeds = options.get("seeds") or []
        kept_seeds = [s if s not in urls else PURGED for s in seeds]
        if len(kept) != len(listed) or kept_seeds != seeds:
            summary["match_list"] = kept
            options["seeds"] = kept_seeds
            run.summary, run.options = json.dumps(summary), json.dumps(options)
            scrubbed += 1
    return scrubbed


def _unlink(paths: set[str]) -> int:
    removed = 0
    for path in paths:
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _items_only_this_case_matched(session: Session, reference_ids: list[int]) -> list[ScannedItem]:
    """Scanned items matched to these references and to no reference of another case."""
    if not reference_ids:
        return []
    matched = set(
        session.execute(
            select(Match.item_id).where(Match.reference_id.in_(reference_ids))
        ).scalars()
    )
    shared = set(
        session.execute(
            select(Match.item_id).where(
                Match.item_id.in_(matched), Match.reference_id.not_in(reference_ids)
            )
        ).scalars()
    )
    ids = sorted(matched - shared)
    if not ids:
        return []
    return list(session.execute(select(ScannedItem).where(ScannedItem.id.in_(ids))).scalars())
