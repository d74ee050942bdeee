"""Support cases and the services given to them."""

from __future__ import annotations

from typing import Any

from ansim.casework import listings
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.listings import CaseSummary
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.crypto import Cipher, case_context
from ansim.store.tables import Case, Reference, Service, Takedown, utcnow
from ansim.store.vocabulary import CASE_TYPES, SERVICE_KINDS
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

CASE_ID_RETRIES = 5


def get_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"unknown case id {case_id!r}")
    return case


def require_open_case(session: Session, case_id: str) -> Case:
    """The case, refusing a closed or purged one (it takes no new references)."""
    case = get_case(session, case_id)
    if case.purged_at is not None:
        raise CaseworkError(f"case {case_id} was purged; it takes no new references")
    if case.status != "open":
        raise CaseworkError(f"case {case_id} is {case.status}; it takes no new references")
    return case


def _next_case_id(session: Session, year: int) -> str:
    """The year's next number. Numbers outgrow their 4-digit padding after 9,999, and
    C-2026-10000 sorts before C-2026-9999 as a string: the longest id is the newest."""
    prefix = f"C-{year}-"
    last = session.execute(
        select(Case.id)
        .where(Case.id.like(f"{prefix}%"))
        .order_by(func.length(Case.id).desc(), Case.id.desc())
        .limit(1)
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
    cipher = workspace.cipher
    for _ in range(CASE_ID_RETRIES):
        try:
            with workspace.session() as session:
                case_id = _next_case_id(session, utcnow().year)
                # Bound to this case id: a token copied to another case does not decrypt.
                session.add(
                    Case(
                        id=case_id,
                        case_type=case_type,
                        pseudonym_encrypted=cipher.encrypt_text(
                            pseudonym, case_context(case_id, "pseudonym")
                        ),
                        contact_encrypted=cipher.encrypt_text(
                            contact or None, case_context(case_id, "contact")
                        ),
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


def pseudonym_of(cipher: Cipher, case: Case) -> str | None:
    return listings.pseudonym(cipher, case.id, case.pseudonym_encrypted, case.pseudonym)


def service_note_of(cipher: Cipher, service: Service) -> str:
    if service.note_encrypted is not None:
        text = cipher.decrypt_text(service.note_encrypted, case_context(service.case_id, "note"))
        return text or ""
    return service.note


def _summary(session: Session, cipher: Cipher, case: Case) -> CaseSummary:
    references = session.execute(
        select(func.count(Reference.id)).where(
            Reference.case_id == case.id, Reference.consent == "given"
        )
    ).scalar_one()
    open_takedowns = session.execute(
        select(func.count(Takedown.id)).where(
            Takedown.case_id == case.id, Takedown.status.not_in(listings.SETTLED_TAKEDOWN_STATUSES)
        )
    ).scalar_one()
    return CaseSummary(
        case.id,
        case.case_type,
        case.status,
        pseudonym_of(cipher, case),
        case.assigned_to,
        case.created_at,
        int(references),
        int(open_takedowns),
    )


def list_cases(workspace: Workspace, status: str | None = None) -> list[CaseSummary]:
    with workspace.listing() as store:
        return listings.list_cases(store, status)


def show_case(workspace: Workspace, case_id: str, reveal: bool = False) -> dict[str, Any]:
    with workspace.session() as session:
        case = get_case(session, case_id)
        shown = _summary(session, workspace.cipher, case).as_dict()
        shown["services"] = [
            {
                "id": s.id,
                "kind": s.kind,
                "date": s.given_on.isoformat(),
                "note": service_note_of(workspace.cipher, s),
            }
            for s in case.services
        ]
        shown["has_contact"] = case.contact_encrypted is not None
        if reveal:
            shown["contact"] = workspace.cipher.decrypt_text(
                case.contact_encrypted, case_context(case_id, "contact")
            )
            audit.record(session, workspace.actor, "case.reveal_contact", case_id)
        else:
            audit.record(session, workspace.actor, "case.show", case_id)
        return shown


def add_service(workspace: Workspace, case_id: str, kind: str, note: str) -> int:
    if kind not in SERVICE_KINDS:
        raise CaseworkError(f"service kind must be one of {', '.join(SERVICE_KINDS)}")
    with workspace.session() as session:
        get_case(session, case_id)
        service = Service(
            case_id=case_id,
            kind=kind,
            note="",
            note_encrypted=workspace.cipher.encrypt_text(
                note or None, case_context(case_id, "note")
            ),
            recorded_by=workspace.actor,
        )
        session.add(service)
        session.flush()
        audit.record(
            session, workspace.actor, "case.service", case_id, {"kind": kind, "id": service.id}
        )
        return service.id
