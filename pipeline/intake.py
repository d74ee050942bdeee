"""Registering what a victim reported: files fingerprinted into references, hash lists
imported and exported, and consent withdrawn.

The media itself is never stored: only its signals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansim.casework.cases import get_case, require_open_case
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.files import expand_paths
from ansim.casework.workspace import Workspace
from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.detector.pdq import DEFAULT_MIN_QUALITY
from ansim.detector.signals import MediaSignals
from ansim.detector.text import decode_text, text_media_signals
from ansim.detector.vpdq_format import format_vpdq, parse_vpdq, read_vpdq_text, split_videos
from ansim.pipeline import hash_lists, retrohunt
from ansim.pipeline.banks import signal_rows
from ansim.pipeline.file_hashing import hash_paths
from ansim.pipeline.scanning import ScanMatch
from ansim.pipeline.workers import Budgets
from ansim.store import audit
from ansim.store.crypto import case_context
from ansim.store.tables import Reference, Signal, utcnow
from sqlalchemy import select


@dataclass
class IntakeResult:
    path: str
    reference_id: int | None = None
    modality: str | None = None
    error: str | None = None
    duplicate: bool = False
    retro_matches: list[ScanMatch] = field(default_factory=list)
    # Retro-hunt candidates fetched again to verify them that were gone or changed.
    retro_not_online: list[retrohunt.Refetched] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "reference_id": self.reference_id,
            "modality": self.modality,
            "error": self.error,
        }
        if self.duplicate:
            out["duplicate"] = True
        if self.retro_matches:
            out["already_crawled"] = [m.as_dict() for m in self.retro_matches]
        if self.retro_not_online:
            out["crawled_not_online"] = [r.as_dict() for r in self.retro_not_online]
        return out


def add_reference_files(
    workspace: Workspace,
    case_id: str,
    paths: list[Path],
    options: HashOptions = HashOptions(),
    on_item: Callable[[IntakeResult], None] | None = None,
    workers: int = 0,
    budgets: Budgets = Budgets(),
) -> list[IntakeResult]:
    """Fingerprint each file into a reference of the case; one transaction per file.

    Files are hashed in `workers` processes (0: this one) and stored in order of completion;
    the results come back in the order the files were given."""
    with workspace.session() as session:
        require_open_case(session, case_id)
    listed = list(expand_paths(paths))
    results: dict[Path, IntakeResult] = {}
    for outcome in hash_paths(listed, options, workers, budgets):
        path = outcome.key
        if outcome.failure is not None:
            result = IntakeResult(str(path), error=outcome.failure)
        else:
            result = _store_reference(
                workspace, case_id, outcome.value, str(path), path.name, "file"
            )
        results[path] = result
        if on_item:
            on_item(result)
    return [results[path] for path in listed]


def add_reference_texts(
    workspace: Workspace,
    case_id: str,
    texts: list[tuple[str, str]],
    options: HashOptions = HashOptions(),
    on_item: Callable[[IntakeResult], None] | None = None,
) -> list[IntakeResult]:
    """One reference per (label, text); the text itself is fingerprinted and dropped."""
    with workspace.session() as session:
        require_open_case(session, case_id)
    results = []
    for label, text in texts:
        try:
            signals = text_media_signals(text, options.text)
        except MediaError as exc:
            result = IntakeResult(label, error=str(exc))
        else:
            result = _store_reference(workspace, case_id, signals, label, label, "text")
        results.append(result)
        if on_item:
            on_item(result)
    return results


def text_lines(path: Path, options: HashOptions = HashOptions()) -> list[tuple[str, str]]:
    """(`name:line`, text) for each non-blank line of a text file (`ref add --lines`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaseworkError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > options.text.max_bytes:
        raise CaseworkError(f"{path} is over the text limit of {options.text.max_bytes:,} bytes")
    try:
        text = decode_text(data).text
    except MediaError as exc:
        raise CaseworkError(f"{path}: {exc}") from exc
    return [
        (f"{path.name}:{number}", line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _store_reference(
    workspace: Workspace,
    case_id: str,
    signals: MediaSignals,
    source: str,
    label: str,
    origin: str,
) -> IntakeResult:
    path = source
    with workspace.session() as session:
        existing = session.execute(
            select(Reference.id)
            .join(Signal, Signal.reference_id == Reference.id)
            .where(
                Reference.case_id == case_id,
                Reference.consent == "given",
                Signal.kind == "sha256",
                Signal.value == signals.sha256,
            )
        ).scalar()
        if existing is not None:
            return IntakeResult(path, existing, signals.modality, duplicate=True)
        rows = signal_rows(signals)
        reference = Reference(
            case_id=case_id,
            modality=signals.modality,
            label_encrypted=workspace.cipher.encrypt_text(label, case_context(case_id, "label")),
            origin=origin,
            added_by=workspace.actor,
            signals=rows,
        )
        session.add(reference)
        session.flush()
        audit.record(
            session,
            workspace.actor,
            "ref.add",
            f"reference:{reference.id}",
            {"case": case_id, "modality": signals.modality},
            # The digest of the victim's own file never goes into the chain in the clear.
            private={"sha256": signals.sha256},
            case_id=case_id,
        )
    # The store has committed; the index follows (and is rebuilt from the store if this dies).
    workspace.banks.add(rows)
    result = IntakeResult(path, reference.id, signals.modality)
    # Retro-hunt: where has this already been crawled? Those copies are queued now.
    with workspace.session() as session:
        hunted = retrohunt.hunt(session, workspace, workspace.history, reference.id, signals)
    result.retro_matches, result.retro_not_online = hunted.matches, hunted.not_online
    return result


# Hash lists (`ref import` / `ref export`) stream through pipeline.hash_lists.
import_hash_list = hash_lists.import_hash_list
export_hash_list = hash_lists.export_hash_list


def _export_consented_signals(
    workspace: Workspace, kind: str, column: Any, case_id: str | None, unit: str
) -> list[tuple[int, Any]]:
    """(reference id, `column`) of every consented reference's `kind` signals, audited as one
    `ref.export`: an export leaves the center, so who took what is always on record."""
    with workspace.session() as session:
        query = (
            select(Reference.id, column)
            .join(Signal, Signal.reference_id == Reference.id)
            .where(Signal.kind == kind, Reference.consent == "given")
            .order_by(Reference.id, Signal.id)
        )
        if case_id:
            get_case(session, case_id)
            query = query.where(Reference.case_id == case_id)
        rows = [(reference_id, value) for reference_id, value in session.execute(query)]
        audit.record(
            session,
            workspace.actor,
            "ref.export",
            f"case:{case_id or '*'}",
            {"format": kind, unit: len(rows)},
        )
    return rows


def withdraw_reference(workspace: Workspace, reference_id: int, reason: str | None = None) -> int:
    """Consent withdrawn: the signals are deleted and leave every index now. Returns how many."""
    with workspace.session() as session:
        reference = session.get(Reference, reference_id)
        if reference is None:
            raise NotFound(f"unknown reference id {reference_id}")
        if reference.consent == "withdrawn":
            raise CaseworkError(f"reference {reference_id} was already withdrawn")
        by_kind: dict[str, list[int]] = {}
        for signal in reference.signals:
            by_kind.setdefault(signal.kind, []).append(signal.id)
        reference.consent = "withdrawn"
        reference.withdrawn_at = utcnow()
        reference.signals.clear()
        audit.record(
            session,
            workspace.actor,
            "ref.withdraw",
            f"reference:{reference_id}",
            {
                "case": reference.case_id,
                "signals_deleted": sum(map(len, by_kind.values())),
            },
            private={"reason": reason} if reason else None,
            case_id=reference.case_id,
        )
    workspace.banks.remove(by_kind)
    return sum(map(len, by_kind.values()))


def import_vpdq_files(
    workspace: Workspace, case_id: str, paths: list[Path], label_prefix: str | None = None
) -> list[IntakeResult]:
    """One video reference per vPDQ hash file (or per `# label` block in a file).

    Frames with quality >= 50 go into the PDQ bank like frames of hashed videos; every
    frame is kept as the reference's vPDQ text. A file that does not parse is reported
    and nothing of it is stored.
    """
    with workspace.session() as session:
        require_open_case(session, case_id)
    results: list[IntakeResult] = []
    for path in expand_paths(paths):
        try:
            videos = split_videos(read_vpdq_text(path), source=path.name)
        except MediaError as exc:
            results.append(IntakeResult(str(path), error=str(exc)))
            continue
        added_rows: list[Signal] = []
        with workspace.session() as session:
            for label, frames in videos:
                rows = [
                    Signal(
                        kind="pdq",
                        value=f.pdq,
                        quality=f.quality,
                        frame=f.frame,
                        timestamp=f.timestamp,
                    )
                    for f in frames
                    if f.quality >= DEFAULT_MIN_QUALITY
                ]
                rows.append(
                    Signal(
                        kind="vpdq",
                        frame=len(frames),
                        timestamp=max(f.timestamp for f in frames),
                        blob=format_vpdq(frames).encode("ascii"),
                    )
                )
                reference = Reference(
                    case_id=case_id,
                    modality="video",
                    label_encrypted=workspace.cipher.encrypt_text(
                        label or path.name, case_context(case_id, "label")
                    ),
                    origin="import",
                    added_by=workspace.actor,
                    signals=rows,
                )
                session.add(reference)
                session.flush()
                added_rows += rows
                results.append(IntakeResult(str(path), reference.id, "video"))
            audit.record(
                session,
                workspace.actor,
                "ref.import",
                f"case:{case_id}",
                {"format": "vpdq", "videos": len(videos)},
                private={"file": path.name},
                case_id=case_id,
            )
        workspace.banks.add(added_rows)
    return results


def export_vpdq(workspace: Workspace, case_id: str | None = None) -> list[tuple[str, str]]:
    """(`ref-ID`, vPDQ text) for every consented video reference."""
    rows = _export_consented_signals(workspace, "vpdq", Signal.blob, case_id, unit="videos")
    exported = []
    for reference_id, blob in rows:
        text = blob.decode("ascii")
        parse_vpdq(text, source=f"reference {reference_id}")  # never export a broken record
        exported.append((f"ref-{reference_id}", text))
    return exported
