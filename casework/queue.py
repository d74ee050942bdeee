"""The takedown queue: listing items and moving them along the allowed status edges."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ansim.casework import listings
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.lifecycle import InvalidTransition, check_transition, transition_time
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.tables import Evidence, Match, ScannedItem, Takedown, TakedownEvent, utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["InvalidTransition", "get_item", "list_queue", "set_status", "show_item", "transition"]


def takedown_summary(takedown: Takedown) -> dict[str, Any]:
    return listings.takedown_summary(
        takedown.id,
        takedown.status,
        takedown.case_id,
        takedown.reference_id,
        takedown.location,
        takedown.detected_at,
    )


def list_queue(
    workspace: Workspace, status: str | None = None, case_id: str | None = None
) -> list[dict[str, Any]]:
    with workspace.listing() as store:
        return listings.list_queue(store, status, case_id)


def show_item(workspace: Workspace, takedown_id: int) -> dict[str, Any]:
    with workspace.session() as session:
        takedown = _get(session, takedown_id)
        shown = takedown_summary(takedown)
        shown["host"] = takedown.host
        shown["reason"] = takedown.reason
        match = session.get(Match, takedown.match_id)
        item = session.get(ScannedItem, takedown.item_id)
        if match is not None:
            shown["match"] = {
                "signal": match.signal,
                "distance": match.distance,
                "score": match.score,
                "explanation": match.explanation,
            }
            if match.region:
                shown["match"]["region"] = json.loads(match.region)
        if item is not None:
            shown["item"] = {"sha256": item.sha256, "mime": item.mime, "size": item.size}
        shown["evidence"] = [
            {
                "id": e.id,
                "bundle": e.bundle_id,
                "page_url": e.page_url,
                "media_url": e.media_url,
                "warc_sha256": e.warc_sha256,
                "records": e.records,
                "created_at": e.created_at.isoformat(),
            }
            for e in session.execute(
                select(Evidence).where(Evidence.takedown_id == takedown.id).order_by(Evidence.id)
            ).scalars()
        ]
        shown["history"] = [
            {
                "from": e.from_status,
                "to": e.to_status,
                "at": e.at.isoformat(),
                "by": e.actor,
                "note": e.note,
            }
            for e in takedown.events
        ]
        audit.record(session, workspace.actor, "queue.show", f"takedown:{takedown.id}")
        return shown


def get_item(session: Session, takedown_id: int, for_update: bool = False) -> Takedown:
    """One queue item; `for_update` locks its row until the transaction ends."""
    return _get(session, takedown_id, for_update)


def _get(session: Session, takedown_id: int, for_update: bool = False) -> Takedown:
    query = select(Takedown).where(Takedown.id == takedown_id)
    if for_update:
        query = query.with_for_update()
    takedown = session.execute(query).scalar()
    if takedown is None:
        raise NotFound(f"unknown queue item {takedown_id}")
    return takedown


def transition(
    session: Session,
    takedown: Takedown,
    to_status: str,
    actor: str,
    note: str | None = None,
    at: datetime | None = None,
) -> TakedownEvent:
    """Move one item along an allowed edge (casework.lifecycle), timestamped and audited.

    The caller holds the item's row lock (`_get(..., for_update=True)`), so two analysts
    acting at once are serialized and the second sees the first one's status.
    """
    check_transition(takedown.id, takedown.status, to_status)
    from_status = takedown.status
    previous = takedown.events[-1].at if takedown.events else takedown.detected_at
    moment = transition_time(at or utcnow(), previous)
    takedown.status = to_status
    takedown.updated_at = moment
    event = TakedownEvent(
        takedown_id=takedown.id,
        from_status=from_status,
        to_status=to_status,
        at=moment,
        actor=actor,
        note=note,
    )
    session.add(event)
    takedown.events.append(event)
    # Notes quote URLs and addresses: kept out of the chain, purged with the case.
    audit.record(
        session,
        actor,
        f"queue.{to_status}",
        f"takedown:{takedown.id}",
        {"from": from_status},
        private={"note": note} if note else None,
        case_id=takedown.case_id,
    )
    return event


def set_status(
    workspace: Workspace, takedown_id: int, to_status: str, note: str | None = None
) -> dict[str, Any]:
    """An analyst's direct decision (reject). Confirmation goes through
    `casework.confirmations.confirm` (its per-case-type rule), notices through
    `casework.notice_service`, re-checks through `casework.recheck_service`."""
    if to_status != "rejected":
        raise CaseworkError(
            f"queue items become {to_status} through their own command, not set_status"
        )
    with workspace.session() as session:
        takedown = _get(session, takedown_id, for_update=True)
        transition(session, takedown, to_status, workspace.actor, note)
        if to_status == "rejected":
            takedown.reason = note
        return takedown_summary(takedown)
