"""Support cases and the services given to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.tables import CASE_TYPES, SERVICE_KINDS, Case, Reference, Service, Takedown, utcnow
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

CASE_ID_RETRIES = 5


def get_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"unknown case id {case_id!r}")
    return case


def _next_case_id(session: Session, year: int) -> str:
    prefix = f"C-{year}-"
    last = session.execute(
        select(func.max(Case.id)).where(Case.id.like(f"{prefix}%"))
    ).scalar_one_or_none()
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def open_case(
    workspace: Workspace,
    case_type: str,
    pseudonym: str | None = None,
    contact: str | None = None,
    assigned_to: str | None = None,
) -> str:
    if case_type not in CASE_TYPES:
        raise CaseworkError(f"case type must be one of {', '.join(CASE_TYPES)}")
    encrypted = workspace.cipher.encrypt(contact.encode()) if contact else None
    for _ in range(CASE_ID_RETRIES):
        try:
            with workspace.session() as session:
                case_id = _next_case_id(session, utcnow().year)
                session.add(
                    Case(
                        id=case_id,
                        case_type=case_type,
                        pseudonym=pseudonym,
                        contact_encrypted=encrypted,
                        assigned_to=assigned_to or workspace.actor,
                    )
                )
                # Never the contact itself, not even encrypted, in the audit log.
                audit.record(
                    session,
                    workspace.actor,
                    "case.open",
                    case_id,
                    {"type": case_type, "has_contact": bool(contact)},
                )
            return case_id
        except IntegrityError:
            continue  # another analyst took the same number at the same moment
    raise CaseworkError("could not allocate a case id; try again")


@dataclass
class CaseSummary:
    case_id: str
    case_type: str
    status: str
    pseudonym: str | None
    assigned_to: str | None
    created_at: datetime
    references: int
    open_takedowns: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "type": self.case_type,
            "status": self.status,
            "pseudonym": self.pseudonym,
            "assigned_to": self.assigned_to,
            "created_at": self.created_at.isoformat(),
            "references": self.references,
            "open_takedowns": self.open_takedowns,
        }


def _summary(session: Session, case: Case) -> CaseSummary:
    references = session.execute(
        select(func.count(Reference.id)).where(
            Reference.case_id == case.id, Reference.consent == "given"
        )
    ).scalar_one()
    open_takedowns = session.execute(
        select(func.count(Takedown.id)).where(
            Takedown.case_id == case.id, Takedown.status.not_in(("rejected", "removed"))
        )
    ).scalar_one()
    return CaseSummary(
        case.id,
        case.case_type,
        case.status,
        case.pseudonym,
        case.assigned_to,
        case.created_at,
        int(references),
        int(open_takedowns),
    )


def list_cases(workspace: Workspace, status: str | None = None) -> list[CaseSummary]:
    with workspace.session() as session:
        query = select(Case).order_by(Case.id)
        if status:
            query = query.where(Case.status == status)
        return [_summary(session, case) for case in session.execute(query).scalars()]


def show_case(workspace: Workspace, case_id: str, reveal: bool = False) -> dict[str, Any]:
    with workspace.session() as session:
        case = get_case(session, case_id)
        shown = _summary(session, case).as_dict()
        shown["services"] = [
            {"id": s.id, "kind": s.kind, "date": s.given_on.isoformat(), "note": s.note}
            for s in case.services
        ]
        shown["has_contact"] = case.contact_encrypted is not None
        if reveal:
            shown["contact"] = (
                workspace.cipher.decrypt(case.contact_encrypted).decode()
                if case.contact_encrypted
                else None
            )
            audit.record(session, workspace.actor, "case.reveal_contact", case_id)
        return shown


def add_service(workspace: Workspace, case_id: str, kind: str, note: str) -> int:
    if kind not in SERVICE_KINDS:
        raise CaseworkError(f"service kind must be one of {', '.join(SERVICE_KINDS)}")
    with workspace.session() as session:
        get_case(session, case_id)
        service = Service(case_id=case_id, kind=kind, note=note, recorded_by=workspace.actor)
        session.add(service)
        session.flush()
        audit.record(
            session, workspace.actor, "case.service", case_id, {"kind": kind, "id": service.id}
        )
        return service.id
