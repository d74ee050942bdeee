"""HMA banks over ansim's references: a bank holds references (in one holding case) whose
victims consented to sharing; its content ids are random, so they say nothing about cases
or references. Lookups search the same indexes as scans, restricted to banked content."""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansim.casework import cases
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.detector.decision import MatchRules
from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.pipeline import intake
from ansim.server.tables import HmaBank, HmaBankContent
from ansim.signal_types.hashing import hash_file
from ansim.store import audit
from ansim.store.tables import Reference, Signal
from ansim.store.vocabulary import CASE_TYPES
from sqlalchemy import func, select

# HMA's names for the signals it shares with ansim, and ansim's own under their own names.
SIGNAL_KINDS = {"pdq": "pdq", "video_md5": "md5", "md5": "md5", "sha256": "sha256"}
SIGNAL_WIDTH = {"pdq": 64, "video_md5": 32, "md5": 32, "sha256": 64}
CONTENT_TYPES = ("photo", "video")
BANK_NAME = re.compile(r"^[A-Z0-9_]{1,128}$")
HEX = re.compile(r"^[0-9a-f]+$")


class ApiError(Exception):
    """An HMA-style refusal: `{"message": ...}` with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bank_json(bank: HmaBank) -> dict[str, Any]:
    return {"name": bank.name, "matching_enabled_ratio": bank.matching_enabled_ratio}


def validate_signal(signal_type: str, value: str) -> str:
    if signal_type not in SIGNAL_KINDS:
        raise ApiError(400, f"No such SignalType '{signal_type}'")
    value = value.strip().lower()
    if len(value) != SIGNAL_WIDTH[signal_type] or not HEX.match(value):
        raise ApiError(400, f"invalid signal: not a {signal_type} hash")
    return value


def list_banks(workspace: Workspace) -> list[dict[str, Any]]:
    with workspace.store.read_session() as session:
        return [
            bank_json(b) for b in session.execute(select(HmaBank).order_by(HmaBank.name)).scalars()
        ]


def _bank(session: Any, name: str) -> HmaBank:
    bank = session.execute(select(HmaBank).where(HmaBank.name == name)).scalar()
    if bank is None:
        raise ApiError(404, f"bank '{name}' not found")
    return bank


def get_bank(workspace: Workspace, name: str) -> dict[str, Any]:
    with workspace.store.read_session() as session:
        return bank_json(_bank(session, name))


def create_bank(
    workspace: Workspace, name: str, enabled_ratio: float = 1.0, case_type: str = "other"
) -> dict[str, Any]:
    if not BANK_NAME.match(name):
        raise ApiError(400, "Field `name` must match /^[A-Z0-9_]+$/")
    if case_type not in CASE_TYPES:
        raise ApiError(400, f"case_type must be one of {', '.join(CASE_TYPES)}")
    if not 0.0 <= enabled_ratio <= 1.0:
        raise ApiError(400, "enabled_ratio must be between 0 and 1")
    with workspace.store.read_session() as session:
        if session.execute(select(HmaBank.id).where(HmaBank.name == name)).scalar() is not None:
            raise ApiError(403, "Bank already exists")
    case_id = cases.open_case(workspace, case_type)
    with workspace.session() as session:
        bank = HmaBank(name=name, case_id=case_id, matching_enabled_ratio=enabled_ratio)
        session.add(bank)
        session.flush()
        audit.record(session, workspace.actor, "hma.bank.create", f"bank:{name}", {"case": case_id})
        return bank_json(bank)


def _new_content(session: Any, bank: HmaBank, reference_id: int) -> int:
    existing = session.execute(
        select(HmaBankContent.id).where(HmaBankContent.reference_id == reference_id)
    ).scalar()
    if existing is not None:
        return int(existing)
    content_id = secrets.randbelow(2**53 - 1) + 1  # fits a JSON number exactly
    session.add(HmaBankContent(id=content_id, bank_id=bank.id, reference_id=reference_id))
    return content_id


def add_content_file(workspace: Workspace, bank_name: str, path: Path) -> dict[str, Any]:
    """Bank an uploaded file: fingerprinted as a reference of the bank's holding case."""
    with workspace.store.read_session() as session:
        bank = _bank(session, bank_name)
    [added] = intake.add_reference_files(workspace, bank.case_id, [path], HashOptions())
    if added.error or added.reference_id is None:
        raise ApiError(400, f"cannot hash the upload: {added.error}")
    with workspace.session() as session:
        content_id = _new_content(session, bank, added.reference_id)
        audit.record(
            session,
            workspace.actor,
            "hma.content.add",
            f"bank:{bank_name}",
            {"content": content_id},
        )
        signals = _signals_of(session, added.reference_id)
    return {"id": content_id, "signals": signals}


def add_content_signals(workspace: Workspace, bank_name: str, given: Any) -> dict[str, Any]:
    """Bank hashes directly (`{"pdq": "..."}`): one reference holding those signals."""
    if not isinstance(given, dict) or not given:
        raise ApiError(400, "No signals given")
    values = {name: validate_signal(name, str(value)) for name, value in given.items()}
    kinds = {SIGNAL_KINDS[name] for name in values}
    with workspace.session() as session:
        bank = _bank(session, bank_name)
        rows = [Signal(kind=SIGNAL_KINDS[name], value=value) for name, value in values.items()]
        reference = Reference(
            case_id=bank.case_id,
            modality="image" if kinds == {"pdq"} else "file",
            origin="import",
            added_by=workspace.actor,
            signals=rows,
        )
        session.add(reference)
        session.flush()
        content_id = _new_content(session, bank, reference.id)
        audit.record(
            session, workspace.actor, "hma.content.add", f"bank:{bank_name}",
            {"content": content_id, "signal_types": sorted(values)},
        )  # fmt: skip
    workspace.banks.add(rows)
    return {"id": content_id, "signals": values}


def _signals_of(session: Any, reference_id: int) -> dict[str, str]:
    found: dict[str, str] = {}
    for kind, value in session.execute(
        select(Signal.kind, Signal.value)
        .where(Signal.reference_id == reference_id)
        .order_by(Signal.id)
    ):
        for name, stored_kind in SIGNAL_KINDS.items():
            if stored_kind == kind and value and name not in found and name != "video_md5":
                found[name] = value
    return found


def _content(session: Any, bank: HmaBank, content_id: int) -> HmaBankContent:
    content = session.get(HmaBankContent, content_id)
    if content is None or content.bank_id != bank.id:
        raise ApiError(404, f"content '{content_id}' not found")
    return content


def get_content(
    workspace: Workspace, bank_name: str, content_id: int, signal_type: str | None
) -> dict[str, Any]:
    with workspace.store.read_session() as session:
        bank = _bank(session, bank_name)
        if signal_type and signal_type not in SIGNAL_KINDS:
            raise ApiError(400, f"No such signal type '{signal_type}'")
        content = _content(session, bank, content_id)
        shown: dict[str, Any] = {
            "id": content.id,
            "bank": bank.name,
            "enabled": content.enabled,
            "original_media_uri": None,  # never kept: the media is the victim's
        }
        if signal_type:
            signals = _signals_of(session, content.reference_id)
            if signal_type in signals:
                shown["signals"] = {signal_type: signals[signal_type]}
        return shown


def delete_content(workspace: Workspace, bank_name: str, content_id: int) -> dict[str, int]:
    """Remove banked content: its reference is withdrawn (signals deleted, out of every index)."""
    with workspace.session() as session:
        bank = _bank(session, bank_name)
        content = session.get(HmaBankContent, content_id)
        if content is None or content.bank_id != bank.id:
            return {"deleted": 0}
        reference_id = content.reference_id
        session.delete(content)
        audit.record(
            session,
            workspace.actor,
            "hma.content.delete",
            f"bank:{bank_name}",
            {"content": content_id},
        )
    # Already withdrawn (consent ended through the case): nothing left to remove.
    with contextlib.suppress(CaseworkError):
        intake.withdraw_reference(workspace, reference_id, "removed from HMA bank")
    return {"deleted": 1}


def hash_path(path: Path, content_type: str) -> dict[str, str]:
    """HMA's hash answer for one file: signal type -> hash."""
    if content_type not in CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{content_type}'")
    try:
        signals = hash_file(path, HashOptions())
    except MediaError as exc:
        raise ApiError(400, f"cannot hash the upload: {exc}") from exc
    expected = "image" if content_type == "photo" else "video"
    if signals.modality != expected:
        raise ApiError(400, f"the upload is {signals.modality}, not {content_type}")
    if content_type == "photo":
        if not signals.pdq:
            raise ApiError(400, "the picture is too plain to hash")
        return {"pdq": signals.pdq[0].pdq}
    return {"video_md5": signals.md5}


def raw_matches(workspace: Workspace, signal_type: str, value: str) -> list[tuple[int, int, int]]:
    """(bank content id, bank id, distance) of every enabled banked item within the
    signal's threshold."""
    value = validate_signal(signal_type, value)
    kind = SIGNAL_KINDS[signal_type]
    with workspace.store.read_session() as session:
        if kind == "pdq":
            index = workspace.banks.index(session, "pdq")
            hits = index.search([value], MatchRules().pdq_max_distance)[0] if len(index) else []
            distance_of_signal = {hit.entry_id: hit.distance for hit in hits}
            if not distance_of_signal:
                return []
            rows = session.execute(
                select(HmaBankContent.id, HmaBankContent.bank_id, Signal.id)
                .join(Signal, Signal.reference_id == HmaBankContent.reference_id)
                .where(Signal.id.in_(distance_of_signal), HmaBankContent.enabled.is_(True))
            ).all()
            best: dict[int, tuple[int, int, int]] = {}
            for content_id, bank_id, signal_id in rows:
                distance = distance_of_signal[signal_id]
                if content_id not in best or distance < best[content_id][2]:
                    best[content_id] = (content_id, bank_id, distance)
            return sorted(best.values(), key=lambda m: (m[2], m[0]))
        rows = session.execute(
            select(HmaBankContent.id, HmaBankContent.bank_id)
            .join(Signal, Signal.reference_id == HmaBankContent.reference_id)
            .where(Signal.kind == kind, Signal.value == value, HmaBankContent.enabled.is_(True))
            .distinct()
        ).all()
        return [(content_id, bank_id, 0) for content_id, bank_id in rows]


def lookup(
    workspace: Workspace, signal_type: str, value: str, coinflip: float = 0.0
) -> dict[str, list[dict[str, Any]]]:
    """HMA's lookup answer: bank name -> [{bank_content_id, distance}], banks whose
    matching_enabled_ratio is below the coin flip left out."""
    matches = raw_matches(workspace, signal_type, value)
    with workspace.store.read_session() as session:
        banks = {
            b.id: b
            for b in session.execute(
                select(HmaBank).where(HmaBank.id.in_({bank_id for _, bank_id, _ in matches}))
            ).scalars()
        }
    result: dict[str, list[dict[str, Any]]] = {}
    for content_id, bank_id, distance in matches:
        bank = banks[bank_id]
        if bank.matching_enabled_ratio >= coinflip and bank.matching_enabled_ratio > 0:
            result.setdefault(bank.name, []).append(
                {"bank_content_id": content_id, "distance": str(distance)}
            )
    return result


@dataclass
class LookupAudit:
    """Audits lookups: every lookup that matched at once (`hma.lookup`: who, which signal
    type, how many; never the hash), the misses as one `hma.lookup.misses` count per caller,
    signal type and endpoint at most every `flush_every_s` (an audit commit costs more than
    the lookup itself, and a partner's traffic is almost all misses). The server flushes
    the pending count when it stops."""

    flush_every_s: float = 10.0
    _misses: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self, workspace: Workspace, actor: str, endpoint: str, signal_type: str, found: int
    ) -> None:
        if found:
            with workspace.session() as session:
                audit.record(
                    session, actor, "hma.lookup", f"signal_type:{signal_type}",
                    {"endpoint": endpoint, "matches": found},
                )  # fmt: skip
        else:
            with self._lock:
                key = (actor, signal_type, endpoint)
                self._misses[key] = self._misses.get(key, 0) + 1
                if self._since is None:
                    self._since = time.monotonic()
        since = self._since
        if since is not None and time.monotonic() - since >= self.flush_every_s:
            self.flush(workspace)

    def flush(self, workspace: Workspace) -> None:
        with self._lock:
            pending, self._misses, self._since = self._misses, {}, None
        if not pending:
            return
        with workspace.session() as session:
            for (actor, signal_type, endpoint), count in sorted(pending.items()):
                audit.record(
                    session, actor, "hma.lookup.misses", f"signal_type:{signal_type}",
                    {"endpoint": endpoint, "lookups": count},
                )  # fmt: skip


def compare(given: Any) -> dict[str, Any]:
    """HMA's /m/compare: each signal type's pair -> [is_match, {"distance": n}]."""
    from ansim.detector.pdq import hex_to_bytes

    if not isinstance(given, dict):
        raise ApiError(400, "Request input was not a dict")
    results: dict[str, Any] = {}
    threshold = MatchRules().pdq_max_distance
    for signal_type, pair in given.items():
        if not isinstance(pair, list):
            raise ApiError(400, f"Comparison hashes for {signal_type} was not a list")
        if len(pair) != 2:
            raise ApiError(400, "Comparison hash list length must be exactly 2")
        left, right = (validate_signal(signal_type, str(v)) for v in pair)
        if SIGNAL_KINDS[signal_type] == "pdq":
            distance = sum(
                bin(a ^ b).count("1")
                for a, b in zip(hex_to_bytes(left), hex_to_bytes(right), strict=True)
            )
            results[signal_type] = [distance <= threshold, {"distance": distance}]
        else:
            same = left == right
            results[signal_type] = [same, {"distance": 0 if same else 1}]
    return results


def index_status(workspace: Workspace, ready: bool, signal_type: str | None) -> dict[str, Any]:
    names = list(SIGNAL_KINDS)
    if signal_type is not None:
        if signal_type not in SIGNAL_KINDS:
            raise ApiError(400, f"No such signal type '{signal_type}'")
        names = [signal_type]
    with workspace.store.read_session() as session:
        sizes = {
            kind: session.execute(
                select(func.count(Signal.id))
                .join(HmaBankContent, HmaBankContent.reference_id == Signal.reference_id)
                .where(Signal.kind == kind)
            ).scalar_one()
            for kind in set(SIGNAL_KINDS.values())
        }
    return {
        name: {
            "present": ready,
            "built_to": -1 if not ready else 0,
            "size": sizes[SIGNAL_KINDS[name]],
        }
        for name in names
    }
