"""Analyst confirmation of queue items, with a per-case-type number of analysts required.

A confirmation is recorded per analyst (the database refuses the same analyst twice); the
item becomes `confirmed` when enough distinct analysts have confirmed it. The item's row is
locked meanwhile, so two analysts confirming at once are counted one after the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ansim.casework.errors import CaseworkError
from ansim.casework.lifecycle import ConfirmationPolicy, add_confirmation, check_transition
from ansim.casework.queue import get_item, takedown_summary, transition
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.crypto import takedown_context
from ansim.store.tables import Case, Confirmation, ConfirmationRule, utcnow
from ansim.store.vocabulary import CASE_TYPES
from sqlalchemy import select
from sqlalchemy.orm import Session

MAX_CONFIRMATIONS = 5


def policy(session: Session) -> ConfirmationPolicy:
    rules = session.execute(select(ConfirmationRule)).scalars()
    return ConfirmationPolicy(per_case_type={rule.case_type: rule.required for rule in rules})


def set_rule(workspace: Workspace, case_type: str, required: int) -> dict[str, int]:
    if case_type not in CASE_TYPES:
        raise CaseworkError(f"case type must be one of {', '.join(CASE_TYPES)}")
    if not 1 <= required <= MAX_CONFIRMATIONS:
        raise CaseworkError(f"confirmations must be between 1 and {MAX_CONFIRMATIONS}")
    with workspace.session() as session:
        rule = session.get(ConfirmationRule, case_type, with_for_update=True)
        before = rule.required if rule else 1
        if rule is None:
            session.add(
                ConfirmationRule(case_type=case_type, required=required, updated_by=workspace.actor)
            )
        else:
            rule.required, rule.updated_by, rule.updated_at = required, workspace.actor, utcnow()
        audit.record(
            session,
            workspace.actor,
            "queue.policy",
            f"case_type:{case_type}",
            {"confirmations": required, "before": before},
        )
        return rules(session)


def rules(session: Session) -> dict[str, int]:
    current = policy(session)
    return {case_type: current.required(case_type) for case_type in CASE_TYPES}


def list_rules(workspace: Workspace) -> dict[str, int]:
    with workspace.session() as session:
        return rules(session)


def confirm(
    workspace: Workspace, takedown_id: int, note: str | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """Record the acting analyst's confirmation; confirm the item once enough agree."""
    with workspace.session() as session:
        takedown = get_item(session, takedown_id, for_update=True)
        check_transition(takedown.id, takedown.status, "confirmed")
        case_type = session.get(Case, takedown.case_id).case_type  # type: ignore[union-attr]
        required = policy(session).required(case_type)
        earlier = session.execute(
            select(Confirmation.analyst)
            .where(Confirmation.takedown_id == takedown.id)
            .order_by(Confirmation.id)
        ).scalars()
        outcome = add_confirmation(takedown.id, list(earlier), workspace.actor, required)
        session.add(
            Confirmation(
                takedown_id=takedown.id,
                analyst=workspace.actor,
                note_encrypted=workspace.cipher.encrypt_text(
                    note, takedown_context(takedown.id, "confirmation-note")
                ),
                at=at or utcnow(),
            )
        )
        audit.record(
            session,
            workspace.actor,
            "queue.confirmation",
            f"takedown:{takedown.id}",
            {"count": len(outcome.analysts), "required": required, "has_note": bool(note)},
        )
        if outcome.confirmed:
            # The note stays in the confirmation, encrypted; the history only says who.
            transition(session, takedown, "confirmed", workspace.actor, None, at)
        shown = takedown_summary(takedown)
        shown["confirmations"] = list(outcome.analysts)
        shown["confirmations_required"] = required
        return shown
