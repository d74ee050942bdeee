"""Listing references: what a victim reported, as the fingerprints kept of it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ansim.casework.cases import get_case
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.store.crypto import case_context
from ansim.store.tables import Reference, Signal
from sqlalchemy import func, select

MODALITIES = ("image", "video", "audio", "text", "file")


def list_references(
    workspace: Workspace,
    case_id: str | None = None,
    modality: str | None = None,
    bank_kinds: Collection[str] = (),
) -> list[dict[str, Any]]:
    """References oldest first, each with its signals by kind and its entries in the banks
    (signals of `bank_kinds`, counted only while consent stands: a withdrawn reference has
    none). Unknown case or modality: refused."""
    if modality is not None and modality not in MODALITIES:
        raise CaseworkError(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
    with workspace.session() as session:
        query = select(Reference).order_by(Reference.id)
        if case_id is not None:
            get_case(session, case_id)
            query = query.where(Reference.case_id == case_id)
        if modality is not None:
            query = query.where(Reference.modality == modality)
        references = list(session.execute(query).scalars())
        signal_counts: dict[int, dict[str, int]] = {r.id: {} for r in references}
        if references:
            rows = session.execute(
                select(Signal.reference_id, Signal.kind, func.count(Signal.id))
                .where(Signal.reference_id.in_(signal_counts))
                .group_by(Signal.reference_id, Signal.kind)
                .order_by(Signal.kind)
            )
            for reference_id, kind, count in rows:
                signal_counts[reference_id][kind] = count
        return [
            {
                "id": r.id,
                "case_id": r.case_id,
                "modality": r.modality,
                # Labels may be names a victim chose: encrypted, bound to the case (older
                # rows kept theirs in plaintext).
                "label": workspace.cipher.decrypt_text(
                    r.label_encrypted, case_context(r.case_id, "label")
                )
                if r.label_encrypted is not None
                else r.label,
                "origin": r.origin,
                "signals": signal_counts[r.id],
                "bank_entries": sum(
                    n for kind, n in signal_counts[r.id].items() if kind in bank_kinds
                )
                if r.consent == "given"
                else 0,
                "consent": r.consent,
                "added_at": r.added_at.isoformat(),
                "added_by": r.added_by,
                "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
            }
            for r in references
        ]
