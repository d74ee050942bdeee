"""Closing a case, and purging what identifies it once the support has ended.

`close` ends the case: no more notices are drafted for it. `close --purge` also deletes
the victim's contact details and pseudonym, every signal of its references and of the
items matched only to it (and takes them out of every index at once), the URLs and
digests kept as evidence, and any evidence files (through `EVIDENCE_CLEANERS`). What stays
is what the center's yearly figures need: case type, dates, services (without notes),
queue items with their hosts and status history. The audit log records what was deleted,
counted, never the content.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ansim.casework.cases import get_case
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.tables import (
    Match,
    Notice,
    NoticeTakedown,
    Recheck,
    Reference,
    ScannedItem,
    Takedown,
    TakedownEvent,
    utcnow,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

# Called with (session, scanned item ids) during a purge; each deletes the evidence it
# keeps for those items (e.g. WARC records) and returns how many it deleted.
EVIDENCE_CLEANERS: list[Callable[[Session, list[int]], int]] = []


def close_case(
    workspace: Workspace, case_id: str, purge: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    moment = now or utcnow()
    reference_signals: dict[str, list[int]] = {}
    item_signals: dict[str, list[int]] = {}
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
            deleted = _purge(session, case_id, reference_signals, item_signals)
            deleted["contact"] = case.contact_encrypted is not None
            deleted["pseudonym"] = case.pseudonym is not None
            case.contact_encrypted = None
            case.pseudonym = None
            case.purged_at = moment
        audit.record(
            session,
            workspace.actor,
            "case.purge" if purge else "case.close",
            case_id,
            {"already_closed": was_closed, "deleted": deleted},
        )
    # Store first, indexes second: a crash in between leaves indexes that disagree with
    # the store, which the banks rebuild on their next use.
    index_entries_removed = workspace.banks.remove(reference_signals)
    index_entries_removed += workspace.history.remove(item_signals)
    return {
        "case_id": case_id,
        "status": "closed",
        "purged": purge,
        "deleted": deleted,
        "index_entries_removed": index_entries_removed,
    }


def _purge(
    session: Session,
    case_id: str,
    reference_signals: dict[str, list[int]],
    item_signals: dict[str, list[int]],
) -> dict[str, Any]:
    references = list(
        session.execute(select(Reference).where(Reference.case_id == case_id)).scalars()
    )
    reference_ids = [r.id for r in references]
    for reference in references:
        for signal in reference.signals:
            reference_signals.setdefault(signal.kind, []).append(signal.id)
        reference.signals.clear()
        reference.label = None

    items = _items_only_this_case_matched(session, reference_ids)
    for item in items:
        for signal in item.signals:
            item_signals.setdefault(signal.kind, []).append(signal.id)
        item.signals.clear()
        item.location = f"purged:item/{item.id}"
        item.sha256 = item.md5 = item.mime = item.error = None
    evidence_files = sum(cleaner(session, [i.id for i in items]) for cleaner in EVIDENCE_CLEANERS)

    takedowns = list(session.execute(select(Takedown).where(Takedown.case_id == case_id)).scalars())
    takedown_ids = [t.id for t in takedowns]
    for takedown in takedowns:
        takedown.location = f"purged:takedown/{takedown.id}"
        takedown.reason = None
    for event in session.execute(
        select(TakedownEvent).where(TakedownEvent.takedown_id.in_(takedown_ids))
    ).scalars():
        event.note = None  # notes quote URLs and addresses
    for check in session.execute(
        select(Recheck).where(Recheck.takedown_id.in_(takedown_ids))
    ).scalars():
        check.final_url = None
    notices = list(
        session.execute(
            select(Notice)
            .join(NoticeTakedown, NoticeTakedown.notice_id == Notice.id)
            .where(NoticeTakedown.takedown_id.in_(takedown_ids), Notice.message.is_not(None))
        )
        .scalars()
        .unique()
    )
    for notice in notices:
        notice.message = None  # the sent text lists the URLs; ref, host and date stay
    case = get_case(session, case_id)
    for service in case.services:
        service.note = ""
    return {
        "reference_signals": sum(map(len, reference_signals.values())),
        "references": len(references),
        "item_signals": sum(map(len, item_signals.values())),
        "items": len(items),
        "evidence_files": evidence_files,
        "takedown_urls": len(takedowns),
        "notice_messages": len(notices),
    }


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
