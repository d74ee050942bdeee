"""The audit log: append-only, hash-chained and keyed.

Each entry's hash is an HMAC (with the audit key, which is not the data key) over its own
fields and the previous entry's hash, so editing, deleting or reordering any row breaks
the chain from that row on, and someone who can write the database but not read the
audit key cannot recompute the chain. Entries chained before keying existed (schema
0004) verify by plain SHA-256, up to the seq the migration recorded and no further.

The newest (seq, hash) is also written, with its own HMAC, to `audit.head` outside the
database, so cutting rows off the end shows too, and `audit verify` fails when that file
is missing while rows exist. `ansim audit anchor --out FILE` writes the head for shipping
off the machine; `audit verify --anchor FILE` checks the chain against such a copy, which
catches even a rewrite by someone holding the audit key.

Free text (notes, URLs, addresses, file digests) never goes into the chained detail: it
goes into `audit_private`, encrypted and deletable by a purge, and the chain holds only
its keyed hash.

The chain's arithmetic (hashes, the walk, the anchor file) needs no SQLAlchemy: the tables
are imported inside the functions that use a Session, so `store.plain_sqlite` (listing
commands that must start fast) appends and verifies with the same code.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ansim.store.tables import AuditEntry
    from sqlalchemy.orm import Session

GENESIS_HASH = "0" * 64
AUDIT_KEY_INFO = "ansim_audit_key"  # Session.info entry holding the audit key (bytes)
CIPHER_INFO = "ansim_cipher"  # Session.info entry holding the data Cipher
UNKEYED_UNTIL = "audit_unkeyed_until"
ANCHOR_MAGIC = "ansim-audit-anchor"
_HASH = re.compile(r"[0-9a-f]{64}")
MAX_SEQ = 2**62


class AuditKeyMissing(Exception):
    """The audit key is not available to this session."""


class AnchorProblem(ValueError):
    """An anchor file is malformed or absurd."""


def _canonical_time(at: datetime) -> str:
    # SQLite hands timestamps back without tzinfo; the chain must hash the same text.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: str,
    prev_hash: str,
    key: bytes | None,
) -> str:
    """HMAC-SHA256 under `key`; plain SHA-256 when `key` is None (entries before 0004)."""
    payload = json.dumps(
        [seq, _canonical_time(at), actor, action, subject, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    if key is None:
        return hashlib.sha256(payload).hexdigest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def private_hash(key: bytes, seq: int, text: str) -> str:
    return hmac.new(key, f"private:{seq}:{text}".encode(), hashlib.sha256).hexdigest()


def anchor_mac(key: bytes, seq: int, head_hash: str, unkeyed_until: int) -> str:
    message = f"anchor:{seq}:{head_hash}:{unkeyed_until}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def audit_key(session: Session) -> bytes:
    key = session.info.get(AUDIT_KEY_INFO)
    if not key:
        raise AuditKeyMissing("no audit key in this session (open the home through open_workspace)")
    return key


def record(
    session: Session,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
    private: dict[str, Any] | None = None,
    case_id: str | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits or rolls back with it).

    `private` holds the free text of the entry (notes, URLs, digests of victim files):
    stored encrypted in `audit_private` under `case_id` (so purging that case deletes it)
    and chained only as its keyed hash.
    """
    from ansim.store.tables import AuditEntry, AuditHead, AuditPrivate
    from sqlalchemy import select

    key = audit_key(session)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar()
    if head is None:
        head = AuditHead(id=1, seq=0, entry_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    chained = dict(detail or {})
    if private:
        text = json.dumps(private, ensure_ascii=False, sort_keys=True, default=str)
        chained["private"] = private_hash(key, seq, text)
        cipher = session.info[CIPHER_INFO]
        session.add(
            AuditPrivate(
                seq=seq,
                case_id=case_id,
                detail_encrypted=cipher.encrypt(text.encode(), f"audit:{seq}"),
            )
        )
    chained_entry = next_entry(head.seq, head.entry_hash, actor, action, subject, chained, key)
    entry = AuditEntry(**asdict(chained_entry))
    session.add(entry)
    head.seq, head.entry_hash = seq, chained_entry.entry_hash
    return entry


@dataclass(frozen=True)
class ChainedEntry:
    """An entry ready to append: the fields of the `audit` table."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    entry_hash: str


def next_entry(
    head_seq: int,
    head_hash: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
    key: bytes,
) -> ChainedEntry:
    """The entry that follows the head (seq, hash), stamped now and keyed with `key`."""
    seq, at = head_seq + 1, datetime.now(UTC)
    detail_text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    digest = entry_hash(seq, at, actor, action, subject, detail_text, head_hash, key)
    return ChainedEntry(seq, at, actor, action, subject, detail_text, head_hash, digest)


def private_detail(session: Session, seq: int) -> dict[str, Any] | None:
    """The free text of entry `seq`, decrypted (None when there is none or it was purged)."""
    from ansim.store.tables import AuditPrivate

    row = session.get(AuditPrivate, seq)
    if row is None:
        return None
    cipher = session.info[CIPHER_INFO]
    return json.loads(cipher.decrypt(row.detail_encrypted, f"audit:{seq}"))


def unkeyed_until(session: Session) -> int:
    from ansim.store.tables import StoreSetting

    setting = session.get(StoreSetting, UNKEYED_UNTIL)
    return int(setting.value) if setting is not None else 0


@dataclass
class AuditProblem:
    seq: int | None
    message: str


@dataclass(frozen=True)
class Anchor:
    seq: int
    head_hash: str
    mac: str | None = None
    unkeyed_until: int | None = None


def parse_anchor(text: str, source: str) -> Anchor:
    """`seq hash mac unkeyed_until` (audit.head), `seq hash` (before 0004), or
    `ansim-audit-anchor seq hash written-at` (a shipped copy)."""
    fields = text.split()
    if fields and fields[0] == ANCHOR_MAGIC:
        fields = fields[1:3]
    if len(fields) not in (2, 4):
        raise AnchorProblem(f"{source} is malformed: expected 'SEQ HASH ...', got {text[:80]!r}")
    seq_text, head_hash = fields[0], fields[1]
    if not seq_text.isdigit() or not 0 < int(seq_text) < MAX_SEQ:
        raise AnchorProblem(f"{source} is malformed: {seq_text[:30]!r} is not a sequence number")
    if not _HASH.fullmatch(head_hash):
        raise AnchorProblem(f"{source} is malformed: {head_hash[:80]!r} is not a SHA-256 hex")
    if len(fields) == 4:
        mac, until = fields[2], fields[3]
        if not _HASH.fullmatch(mac) or not until.isdigit() or int(until) >= MAX_SEQ:
            raise AnchorProblem(f"{source} is malformed: bad signature fields")
        return Anchor(int(seq_text), head_hash, mac, int(until))
    return Anchor(int(seq_text), head_hash)


def read_anchor(path: Path) -> Anchor:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise AnchorProblem(f"cannot read anchor {path}: {exc.strerror}") from exc
    if len(text) > 4096:
        raise AnchorProblem(f"{path} is malformed: {len(text)} bytes is too long for an anchor")
    return parse_anchor(text, str(path))


def verify(
    session: Session,
    head_file: Path | None = None,
    shipped: Path | None = None,
    key: bytes | None = None,
) -> tuple[int, list[AuditProblem]]:
    """Walk the chain; returns (entries checked, problems found).

    `head_file` is the home's own anchor (audit.head): required once rows exist.
    `shipped` is a copy of an earlier head kept off the machine (`audit anchor --out`).
    """
    from ansim.store.tables import AuditEntry, AuditHead
    from sqlalchemy import select

    key = key if key is not None else audit_key(session)
    entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    head = session.get(AuditHead, 1)
    return verify_entries(
        entries,
        None if head is None else (head.seq, head.entry_hash),
        unkeyed_until(session),
        key,
        head_file,
        shipped,
    )


def verify_entries(
    entries: Iterable[AuditEntry | ChainedEntry],
    head: tuple[int, str] | None,
    legacy_end: int,
    key: bytes,
    head_file: Path | None = None,
    shipped: Path | None = None,
) -> tuple[int, list[AuditProblem]]:
    """`verify` over entries in seq order and the stored head (seq, hash), however read."""
    problems: list[AuditProblem] = []
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    hash_at_seq: dict[int, str] = {}
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                AuditProblem(entry.seq, f"entry {expected_seq} is missing before {entry.seq}")
            )
        if entry.prev_hash != expected_prev:
            problems.append(
                AuditProblem(entry.seq, "previous-hash link broken (row deleted or reordered)")
            )
        fields = (entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.detail)
        keyed = entry_hash(*fields, entry.prev_hash, key)
        ok = hmac.compare_digest(keyed, entry.entry_hash) or (
            entry.seq <= legacy_end
            and entry_hash(*fields, entry.prev_hash, None) == entry.entry_hash
        )
        if not ok:
            problems.append(
                AuditProblem(entry.seq, "contents do not match their keyed hash (row edited)")
            )
        expected_prev, expected_seq = entry.entry_hash, entry.seq + 1
        hash_at_seq[entry.seq] = entry.entry_hash
    last = (expected_seq - 1, expected_prev)
    if head is not None and head != last:
        problems.append(AuditProblem(None, f"chain ends at {last[0]} but its head says {head[0]}"))
    if head_file is not None:
        problems += _check_home_anchor(head_file, key, legacy_end, last[0], hash_at_seq)
    if shipped is not None:
        problems += _check_against(read_anchor(shipped), str(shipped), last[0], hash_at_seq)
    return count, problems


def _check_home_anchor(
    head_file: Path, key: bytes, legacy_end: int, last_seq: int, hash_at_seq: dict[int, str]
) -> list[AuditProblem]:
    if not head_file.exists():
        if last_seq:
            return [AuditProblem(None, f"the anchor {head_file} is missing while entries exist")]
        return []
    try:
        anchor = read_anchor(head_file)
    except AnchorProblem as exc:
        return [AuditProblem(None, str(exc))]
    if anchor.mac is None:
        if anchor.seq > legacy_end:
            return [AuditProblem(None, f"the anchor {head_file} is unsigned")]
    elif anchor.unkeyed_until != legacy_end or not hmac.compare_digest(
        anchor.mac, anchor_mac(key, anchor.seq, anchor.head_hash, legacy_end)
    ):
        return [AuditProblem(None, f"the anchor {head_file} has a wrong signature")]
    return _check_against(anchor, str(head_file), last_seq, hash_at_seq)


def _check_against(
    anchor: Anchor, source: str, last_seq: int, hash_at_seq: dict[int, str]
) -> list[AuditProblem]:
    if anchor.seq > last_seq:
        return [
            AuditProblem(
                None, f"entries after {last_seq} were cut off ({source} says {anchor.seq})"
            )
        ]
    if hash_at_seq.get(anchor.seq) != anchor.head_hash:
        return [AuditProblem(anchor.seq, f"entry differs from the anchored head in {source}")]
    return []


def write_anchor(head_file: Path, seq: int, head_hash: str, key: bytes, legacy_end: int) -> None:
    """Copy the chain head outside the database (after a commit), signed with the audit
    key. Never moves backwards: a slower writer finishing after a faster one must not
    hide the newer head."""
    head_file.parent.mkdir(parents=True, exist_ok=True)
    with open(head_file.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if head_file.exists():
            try:
                anchored = read_anchor(head_file)
            except AnchorProblem:
                anchored = None  # `audit verify` reports it; a good head replaces it
            if anchored is not None and anchored.mac is not None and anchored.seq >= seq:
                return
        temporary = head_file.with_suffix(f".tmp{os.getpid()}")
        mac = anchor_mac(key, seq, head_hash, legacy_end)
        temporary.write_text(f"{seq} {head_hash} {mac} {legacy_end}\n")
        temporary.replace(head_file)


def shipped_anchor_text(seq: int, head_hash: str) -> str:
    """The head as shipped off the machine (`ansim audit anchor --out`)."""
    written = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{ANCHOR_MAGIC} {seq} {head_hash} {written}\n"
