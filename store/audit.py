"""The audit log: append-only and hash-chained.

Each entry's hash covers its own fields and the previous entry's hash, so editing,
deleting or reordering any row breaks the chain from that row on. The newest (seq, hash)
is also written to a file outside the database, so cutting rows off the end shows too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansim.store.tables import AuditEntry, AuditHead, utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

GENESIS_HASH = "0" * 64


def _canonical_time(at: datetime) -> str:
    # SQLite hands timestamps back without tzinfo; the chain must hash the same text.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str, detail: str, prev_hash: str
) -> str:
    payload = json.dumps(
        [seq, _canonical_time(at), actor, action, subject, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    session: Session, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits or rolls back with it)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar()
    if head is None:
        head = AuditHead(id=1, seq=0, entry_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    at = utcnow()
    detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    digest = entry_hash(seq, at, actor, action, subject, detail_text, head.entry_hash)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        detail=detail_text,
        prev_hash=head.entry_hash,
        entry_hash=digest,
    )
    session.add(entry)
    head.seq, head.entry_hash = seq, digest
    return entry


@dataclass
class AuditProblem:
    seq: int | None
    message: str


def verify(session: Session, head_file: Path | None = None) -> tuple[int, list[AuditProblem]]:
    """Walk the chain; returns (entries checked, problems found)."""
    problems: list[AuditProblem] = []
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    hash_at_seq: dict[int, str] = {}
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                AuditProblem(entry.seq, f"entry {expected_seq} is missing before {entry.seq}")
            )
        if entry.prev_hash != expected_prev:
            problems.append(
                AuditProblem(entry.seq, "previous-hash link broken (row deleted or reordered)")
            )
        recomputed = entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.detail,
            entry.prev_hash,
        )
        if recomputed != entry.entry_hash:
            problems.append(
                AuditProblem(entry.seq, "contents do not match their hash (row edited)")
            )
        expected_prev, expected_seq = entry.entry_hash, entry.seq + 1
        hash_at_seq[entry.seq] = entry.entry_hash
    head = session.get(AuditHead, 1)
    last = (expected_seq - 1, expected_prev)
    if head is not None and (head.seq, head.entry_hash) != last:
        problems.append(AuditProblem(None, f"chain ends at {last[0]} but its head says {head.seq}"))
    if head_file is not None and head_file.exists():
        text_seq, _, anchored_hash = head_file.read_text().strip().partition(" ")
        anchored_seq = int(text_seq)
        if anchored_seq > last[0]:
            problems.append(
                AuditProblem(
                    None, f"entries after {last[0]} were cut off (anchor says {anchored_seq})"
                )
            )
        elif anchored_seq and hash_at_seq.get(anchored_seq) != anchored_hash:
            problems.append(AuditProblem(anchored_seq, "entry differs from the anchored head"))
    return count, problems


def write_anchor(head_file: Path, seq: int, head_hash: str) -> None:
    """Copy the chain head outside the database (after a commit). Never moves backwards:
    a slower writer finishing after a faster one must not hide the newer head."""
    head_file.parent.mkdir(parents=True, exist_ok=True)
    with open(head_file.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if head_file.exists():
            anchored = int(head_file.read_text().split(" ", 1)[0] or 0)
            if anchored >= seq:
                return
        temporary = head_file.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(f"{seq} {head_hash}\n")
        temporary.replace(head_file)
