"""Listing cases, the takedown queue, references and hosts: one SQL query each, run on a
`ListingStore`, so the same code serves a Workspace's Session (`Workspace.listing()`, any
database) and the lean SQLite opening of listing commands (`store.plain_sqlite`), which
must start without importing SQLAlchemy.

The SQL is plain and portable (SQLite and PostgreSQL), with `:name` parameters (sqlite3
and SQLAlchemy's `text()` both take them). Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ansim.casework.errors import CaseworkError, NotFound
from ansim.store.crypto import Cipher, case_context

MODALITIES = ("image", "video", "audio", "text", "file")
# Takedown items in these statuses are settled: a case's open takedowns are the others.
SETTLED_TAKEDOWN_STATUSES = ("rejected", "removed")


class ListingStore(Protocol):
    """One transaction on an opened home."""

    cipher: Cipher

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The result rows of `sql` (tuples, in the order of its columns)."""
        ...

    def record_audit(self, action: str, subject: str, detail: dict[str, Any]) -> None:
        """An audit entry by the acting analyst, in this transaction."""
        ...


def as_datetime(value: datetime | str) -> datetime:
    """A timestamp column's value: SQLite hands back the text SQLAlchemy stored."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _where(conditions: dict[str, object]) -> str:
    """`WHERE a = :a AND b = :b` for the conditions whose value is given."""
    given = [
        f"{column} = :{column.split('.')[-1]}" for column, value in conditions.items() if value
    ]
    return f" WHERE {' AND '.join(given)}" if given else ""


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


def pseudonym(
    cipher: Cipher, case_id: str, encrypted: bytes | None, plain: str | None
) -> str | None:
    if encrypted is not None:
        return cipher.decrypt_text(encrypted, case_context(case_id, "pseudonym"))
    return plain  # written before 0004, until `ansim key rotate` encrypts it


_SETTLED = ", ".join(f"'{status}'" for status in SETTLED_TAKEDOWN_STATUSES)
CASES_SQL = f"""
SELECT c.id, c.case_type, c.status, c.pseudonym_encrypted, c.pseudonym, c.assigned_to,
       c.created_at,
       (SELECT count(*) FROM "reference" r WHERE r.case_id = c.id AND r.consent = 'given'),
       (SELECT count(*) FROM takedown t
         WHERE t.case_id = c.id AND t.status NOT IN ({_SETTLED}))
FROM support_case c"""


def list_cases(store: ListingStore, status: str | None = None) -> list[CaseSummary]:
    """Cases by id with their consented references and open takedowns (audited)."""
    where = _where({"c.status": status})
    listed = [
        CaseSummary(
            case_id,
            case_type,
            case_status,
            pseudonym(store.cipher, case_id, encrypted, plain),
            assigned_to,
            as_datetime(created_at),
            int(references),
            int(open_takedowns),
        )
        for (
            case_id,
            case_type,
            case_status,
            encrypted,
            plain,
            assigned_to,
            created_at,
            references,
            open_takedowns,
        ) in store.rows(CASES_SQL + where + " ORDER BY c.id", {"status": status})
    ]
    # Reads are audited too: who looked at which victims' cases, and when.
    store.record_audit("case.list", "case:*", {"status": status, "shown": len(listed)})
    return listed


def takedown_summary(
    takedown_id: int,
    status: str,
    case_id: str,
    reference_id: int,
    location: str,
    detected_at: datetime | str,
) -> dict[str, Any]:
    return {
        "id": takedown_id,
        "status": status,
        "case_id": case_id,
        "reference_id": reference_id,
        ("url" if "://" in location else "path"): location,
        "detected_at": as_datetime(detected_at).isoformat(),
    }


def list_queue(
    store: ListingStore, status: str | None = None, case_id: str | None = None
) -> list[dict[str, Any]]:
    """Takedown items by id (audited)."""
    where = _where({"status": status, "case_id": case_id})
    listed = [
        takedown_summary(*row)
        for row in store.rows(
            "SELECT id, status, case_id, reference_id, location, detected_at FROM takedown"
            + where
            + " ORDER BY id",
            {"status": status, "case_id": case_id},
        )
    ]
    # Reads are audited: who looked at which victims' material, and when.
    store.record_audit(
        "queue.list", f"case:{case_id or '*'}", {"status": status, "shown": len(listed)}
    )
    return listed


def list_references(
    store: ListingStore,
    case_id: str | None = None,
    modality: str | None = None,
    bank_kinds: Collection[str] = (),
) -> list[dict[str, Any]]:
    """References oldest first, each with its signals by kind and its entries in the banks
    (signals of `bank_kinds`, counted only while consent stands: a withdrawn reference has
    none). Unknown case or modality: refused."""
    if modality is not None and modality not in MODALITIES:
        raise CaseworkError(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
    params = {"case_id": case_id, "modality": modality}
    if case_id is not None and not store.rows(
        "SELECT 1 FROM support_case WHERE id = :case_id", params
    ):
        raise NotFound(f"unknown case id {case_id!r}")
    references = store.rows(
        "SELECT id, case_id, modality, label_encrypted, label, origin, consent, added_at, "
        'added_by, withdrawn_at FROM "reference"'
        + _where({"case_id": case_id, "modality": modality})
        + " ORDER BY id",
        params,
    )
    signal_counts: dict[int, dict[str, int]] = {row[0]: {} for row in references}
    if references:
        for reference_id, kind, count in store.rows(
            'SELECT s.reference_id, s.kind, count(s.id) FROM signal s JOIN "reference" r '
            "ON r.id = s.reference_id"
            + _where({"r.case_id": case_id, "r.modality": modality})
            + " GROUP BY s.reference_id, s.kind ORDER BY s.kind",
            params,
        ):
            signal_counts[reference_id][kind] = int(count)
    listed = []
    for (
        reference_id,
        reference_case,
        reference_modality,
        label_encrypted,
        label,
        origin,
        consent,
        added_at,
        added_by,
        withdrawn_at,
    ) in references:
        signals = signal_counts[reference_id]
        listed.append(
            {
                "id": reference_id,
                "case_id": reference_case,
                "modality": reference_modality,
                # Labels may be names a victim chose: encrypted, bound to the case (older
                # rows kept theirs in plaintext).
                "label": store.cipher.decrypt_text(
                    label_encrypted, case_context(reference_case, "label")
                )
                if label_encrypted is not None
                else label,
                "origin": origin,
                "signals": signals,
                "bank_entries": sum(n for kind, n in signals.items() if kind in bank_kinds)
                if consent == "given"
                else 0,
                "consent": consent,
                "added_at": as_datetime(added_at).isoformat(),
                "added_by": added_by,
                "withdrawn_at": as_datetime(withdrawn_at).isoformat() if withdrawn_at else None,
            }
        )
    return listed


def host_summary(
    domain: str, abuse_email: str | None, form_url: str | None, lang: str
) -> dict[str, Any]:
    return {"domain": domain, "abuse_email": abuse_email, "form_url": form_url, "lang": lang}


def list_hosts(store: ListingStore) -> list[dict[str, Any]]:
    """Registered hosts by domain."""
    return [
        host_summary(*row)
        for row in store.rows(
            "SELECT domain, abuse_email, form_url, lang FROM host ORDER BY domain"
        )
    ]
