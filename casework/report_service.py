"""`ansim report`: the figures of casework.reporting over the store, and the plot."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ansim.casework.cases import get_case
from ansim.casework.errors import CaseworkError
from ansim.casework.lifecycle import as_utc
from ansim.casework.reporting import ItemHistory, ServiceRecord, compute_report
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.tables import Case, Service, Takedown, TakedownEvent, utcnow
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def parse_moment(text: str) -> datetime:
    """`2026-03-01` (midnight UTC) or an ISO date-time (UTC unless it names an offset)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        return as_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise CaseworkError(f"not a date: {text!r} (use 2026-03-01 or 2026-03-01T09:00)") from exc


def load_histories(session: Session, case_id: str | None = None) -> list[ItemHistory]:
    query = select(Takedown, Case.case_type).join(Case, Case.id == Takedown.case_id)
    if case_id:
        query = query.where(Takedown.case_id == case_id)
    rows = session.execute(query.order_by(Takedown.id)).all()
    firsts: dict[tuple[int, str], datetime] = {
        (takedown_id, status): at
        for takedown_id, status, at in session.execute(
            select(TakedownEvent.takedown_id, TakedownEvent.to_status, func.min(TakedownEvent.at))
            .where(TakedownEvent.to_status.in_(("notice_sent", "removed", "reappeared")))
            .group_by(TakedownEvent.takedown_id, TakedownEvent.to_status)
        )
    }
    return [
        ItemHistory(
            takedown_id=takedown.id,
            case_id=takedown.case_id,
            case_type=case_type,
            host=takedown.host,
            status=takedown.status,
            detected_at=as_utc(takedown.detected_at),
            first_notice_at=_utc(firsts.get((takedown.id, "notice_sent"))),
            removed_at=_utc(firsts.get((takedown.id, "removed"))),
            reappeared=(takedown.id, "reappeared") in firsts,
        )
        for takedown, case_type in rows
    ]


def _utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def load_services(session: Session, case_id: str | None = None) -> list[ServiceRecord]:
    query = select(Service.case_id, Service.kind, Service.given_on)
    if case_id:
        query = query.where(Service.case_id == case_id)
    return [ServiceRecord(c, k, as_utc(g)) for c, k, g in session.execute(query)]


def build_report(
    workspace: Workspace,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: str | None = None,
    plot: Path | BinaryIO | None = None,
) -> dict[str, Any]:
    """The report's figures; with `plot`, also its PNG (into a file, or a buffer)."""
    until = until or utcnow()
    if since is not None and since >= until:
        raise CaseworkError(f"--since ({since:%Y-%m-%d %H:%M}) must be before --until")
    with workspace.session() as session:
        if case_id:
            get_case(session, case_id)
        items = load_histories(session, case_id)
        services = load_services(session, case_id)
        audit.record(
            session,
            workspace.actor,
            "report.read",
            f"case:{case_id or '*'}",
            {"items": len(items), "plot": plot is not None},
        )
    report = compute_report(items, services, since=since, until=until)
    report["case"] = case_id
    if plot is not None:
        from ansim.casework.report_plot import plot_report  # matplotlib: only when asked for

        start = since or min((i.detected_at for i in items), default=until)
        drawn = plot_report(report, items, start, until, plot)
        if isinstance(drawn, Path):
            report["plot"] = str(drawn)
    return report
