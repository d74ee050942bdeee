"""The takedown queue: listing items and moving them along the allowed status edges."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from casework import audit
from casework.errors import CaseworkError, NotFound
from casework.models import Match, ScannedItem, Takedown, TakedownEvent, utcnow
from casework.workspace import Workspace

ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    "new": {"confirmed", "rejected"},
}


class InvalidTransition(CaseworkError):
    pass


def _location_field(location: str) -> str:
    return "url" if "://" in location else "path"


def takedown_summary(takedown: Takedown) -> dict[str, Any]:
    return {
        "id": takedown.id,
        "status": takedown.status,
        "case_id": takedown.case_id,
        "reference_id": takedown.reference_id,
        _location_field(takedown.location): takedown.location,
        "detected_at": takedown.detected_at.isoformat(),
    }


def list_queue(
    workspace: Workspace, status: str | None = None, case_id: str | None = None
) -> list[dict[str, Any]]:
    with workspace.session() as session:
        query = select(Takedown).order_by(Takedown.id)
        if status:
            query = query.where(Takedown.status == status)
        if case_id:
            query = query.where(Takedown.case_id == case_id)
        return [takedown_summary(t) for t in session.execute(query).scalars()]


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
        if item is not None:
            shown["item"] = {"sha256": item.sha256, "mime": item.mime, "size": item.size}
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
        return shown


def _get(session: Session, takedown_id: int, for_update: bool = False) -> Takedown:
    query = select(Takedown).where(Takedown.id == takedown_id)
    if for_update:
        query = query.with_for_update()
    takedown = session.execute(query).scalar()
    if takedown is None:
        raise NotFound(f"unknown queue item {takedown_id}")
    return takedown


def transition(
    session: Session, takedown: Takedown, to_status: str, actor: str, note: str | None = None
) -> None:
    """Move one item along an allowed edge, timestamped and audited."""
    if to_status not in ALLOWED_TRANSITIONS.get(takedown.status, set()):
        raise InvalidTransition(
            f"queue item {takedown.id} is {takedown.status}; it cannot become {to_status}"
        )
    from_status = takedown.status
    takedown.status = to_status
    takedown.updated_at = utcnow()
    session.add(
        TakedownEvent(
            takedown_id=takedown.id,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            note=note,
        )
    )
    audit.record(
        session,
        actor,
        f"queue.{to_status}",
        f"takedown:{takedown.id}",
        {"from": from_status, "note": note},
    )


def set_status(
    workspace: Workspace, takedown_id: int, to_status: str, note: str | None = None
) -> dict[str, Any]:
    with workspace.session() as session:
        takedown = _get(session, takedown_id, for_update=True)
        transition(session, takedown, to_status, workspace.actor, note)
        if to_status == "rejected":
            takedown.reason = note
        return takedown_summary(takedown)
