"""Scanning collected files: fingerprint, match against the reference bank, and put every
match into the takedown queue (one item per location and case).

Worker processes hash each file; this process matches it (or, with more workers than it
keeps up with, the worker that hashed it does) and records it. Finished files are
committed together (`COMMIT_EVERY_FILES`, `COMMIT_INTERVAL_S`), each file in its own
SAVEPOINT, so an interrupted scan keeps every file committed before the interruption
(a kill loses at most the open batch, which was not yet reported as scanned) and a re-run
adds no duplicate queue items.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ansim.casework import reappearance
from ansim.casework.files import expand_paths
from ansim.casework.queue import transition
from ansim.casework.workspace import Workspace
from ansim.detector.decision import MatchRules
from ansim.detector.hashing import HashOptions
from ansim.detector.signals import MediaSignals
from ansim.pipeline.banks import signal_rows
from ansim.pipeline.file_hashing import MatchedFile, hash_paths, hash_work
from ansim.pipeline.matching import Finding, find_matches
from ansim.pipeline.workers import WORKER_LOST, Budgets, run_in_process
from ansim.store import audit
from ansim.store.tables import Match, ScannedItem, Signal, Takedown, TakedownEvent
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

# The columns a signal row is made of (besides its id and its owner).
SIGNAL_COLUMNS = ("kind", "value", "quality", "frame", "timestamp", "blob")
# The stores ansim runs on, and their INSERT ... ON CONFLICT.
CONFLICT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# A commit (and the audit head's anchor after it) per file cost the recording process more
# CPU than the file's own rows. A batch is committed when it holds this many files or its
# first file has waited this long, whichever comes first: the interval bounds what a kill
# loses and how long the scan holds SQLite's write lock.
COMMIT_EVERY_FILES = 64
COMMIT_INTERVAL_S = 0.25
# This process matches each file while the workers hash the next ones, as long as it keeps
# up with them: matching an image costs less CPU than hashing it, so it keeps up with this
# many workers (benchmarks/RESULTS.md, "scan"). With more, this process would be the one
# serial step, and each worker matches what it hashed instead, at the price of every
# worker importing the store's modules and loading the banks.
PARENT_MATCHES_FOR_WORKERS = 2


@dataclass
class ScanMatch:
    location: str
    case_id: str
    reference_id: int
    signal: str
    distance: float
    explanation: str
    takedown_id: int | None

    def as_dict(self) -> dict[str, Any]:
        key = "url" if "://" in self.location else "path"
        return {
            key: self.location,
            "case_id": self.case_id,
            "reference_id": self.reference_id,
            "signal": self.signal,
            "distance": self.distance,
            "explanation": self.explanation,
            "takedown_id": self.takedown_id,
        }


@dataclass
class ScanReport:
    scanned: int = 0
    errors: int = 0
    matches: list[ScanMatch] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "errors": self.errors,
            "matches": [m.as_dict() for m in self.matches],
            "failures": self.failures,
        }


def scan_paths(
    workspace: Workspace,
    paths: list[Path],
    dry_run: bool = False,
    options: HashOptions = HashOptions(),
    rules: MatchRules = MatchRules(),
    on_item: Callable[[Path, list[ScanMatch], str | None], None] | None = None,
    workers: int = 0,
    budgets: Budgets = Budgets(),
    on_start: Callable[[Path, Any], None] | None = None,
    engine: str = "local",
    address: str | None = None,
) -> ScanReport:
    """Hash the files in `workers` processes (0: in this one), each under its budget, and
    record each as it comes back (its own SAVEPOINT in a batch's transaction, in order of
    completion; `on_item` once its batch committed). The report lists failures and matches
    in the order the files were given.

    A file whose hashing worker was lost (killed, crashed, hung) is recorded with a
    `worker lost:` error; the next scan of it tries again, until it has cost
    `budgets.max_item_kills` workers."""
    report = ScanReport()
    listed = list(expand_paths(paths))
    order = {str(path): number for number, path in enumerate(listed)}
    kills = {} if dry_run else _worker_losses(workspace, list(order))
    given_up = {p for p in order if kills.get(p, 0) >= budgets.max_item_kills}
    failures: list[dict[str, str]] = []

    def finished(path: Path, matches: list[ScanMatch], error: str | None) -> None:
        report.scanned += 1
        if error is not None:
            report.errors += 1
            failures.append({"path": str(path), "error": error})
        report.matches += matches
        if on_item:
            on_item(path, matches, error)

    for path in listed:
        if str(path) in given_up:
            finished(
                path,
                [],
                f"not tried again: hashing it cost {kills[str(path)]} workers "
                f"(the limit is {budgets.max_item_kills})",
            )
    todo = [path for path in listed if str(path) not in given_up]
    matching = None
    if engine == "local" and workers > PARENT_MATCHES_FOR_WORKERS and len(todo) > 1:
        # More workers than this process keeps up with: each worker matches what it
        # hashed. The banks are brought level with the store here first, so that no worker
        # has an index to catch up or rebuild: they only read them.
        with workspace.store.read_session() as session:
            workspace.banks.bring_level(session)
        matching = (workspace.home, rules)
    batch = _RecordBatch(workspace, dry_run, rules, finished)
    outcomes = hash_paths(
        todo, options, workers, budgets, on_start, engine, address, matching, COMMIT_INTERVAL_S
    )
    try:
        for outcome in outcomes:
            if outcome is None:  # no file ended for a while: commit what waits
                batch.write_if_overdue()
            else:
                batch.add(outcome.key, outcome.value, outcome.failure)
    except BaseException:
        batch.write_after_interruption()
        raise
    batch.write()
    report.failures = sorted(failures, key=lambda f: order[f["path"]])
    report.matches.sort(key=lambda m: order[m.location])
    return report


class _RecordBatch:
    """Finished files' store writes, committed together, each file in its own SAVEPOINT.
    A file is reported (`finished`) only once its batch committed. A file whose recording
    raises stops the scan, as it always did: the files before it in the batch are committed
    first, and the files after it are not recorded."""

    def __init__(
        self,
        workspace: Workspace,
        dry_run: bool,
        rules: MatchRules,
        finished: Callable[[Path, list[ScanMatch], str | None], None],
    ) -> None:
        self.workspace = workspace
        self.dry_run = dry_run
        self.rules = rules
        self.finished = finished
        self._files: list[tuple[Path, MatchedFile | None, str | None]] = []
        self._opened = 0.0

    def add(self, path: Path, value: Any, error: str | None) -> None:
        """One file's outcome: its MatchedFile, or its MediaSignals (matched here, outside
        the batch's transaction), or its error."""
        if error is None and not isinstance(value, MatchedFile):
            with self.workspace.store.read_session() as session:
                findings = find_matches(session, self.workspace.banks, value, self.rules)
            value = MatchedFile(value, findings)
        if self.dry_run:
            matches = (
                []
                if error is not None
                else [_scan_match(str(path), finding, None) for finding in value.findings]
            )
            self.finished(path, matches, error)
            return
        if not self._files:
            self._opened = time.monotonic()
        self._files.append((path, value, error))
        if len(self._files) >= COMMIT_EVERY_FILES or self._overdue():
            self.write()

    def _overdue(self) -> bool:
        return bool(self._files) and time.monotonic() - self._opened >= COMMIT_INTERVAL_S

    def write_if_overdue(self) -> None:
        if self._overdue():
            self.write()

    def write(self) -> None:
        files, self._files = self._files, []
        if not files:
            return
        written: list[tuple[Path, list[ScanMatch], str | None]] = []
        failure: Exception | None = None
        with self.workspace.store.session() as session:
            for path, value, error in files:
                try:
                    with session.begin_nested():
                        matches = self._record(session, str(path), value, error)
                except Exception as exc:  # recorded below, once the files before it are
                    failure = exc
                    break
                written.append((path, matches, error))
        self.workspace.anchor_audit_head()
        for path, matches, error in written:
            self.finished(path, matches, error)
        if failure is not None:
            raise failure

    def write_after_interruption(self) -> None:
        """Commit what finished before an interruption (Ctrl-C, a broken pool); a failure
        to do so leaves those files unrecorded, as a kill would, and the interruption's
        own exception is the one that propagates."""
        with contextlib.suppress(Exception):
            self.write()

    def _record(
        self, session: Session, location: str, value: MatchedFile | None, error: str | None
    ) -> list[ScanMatch]:
        if error is not None or value is None:
            session.add(ScannedItem(location=location, error=error))
            return []
        _item, matches = record_item(
            session, self.workspace, value.signals, location, self.rules, value.findings
        )
        return matches


def _worker_losses(workspace: Workspace, locations: list[str]) -> dict[str, int]:
    """How many scans of each location lost their hashing worker (only ones that did)."""
    if not locations:
        return {}
    wanted = set(locations)
    with workspace.session() as session:
        rows = session.execute(
            select(ScannedItem.location, func.count())
            .where(ScannedItem.error.startswith(WORKER_LOST))
            .group_by(ScannedItem.location)
        )
        return {location: count for location, count in rows if location in wanted}


def scan_file(
    workspace: Workspace,
    path: Path,
    location: str,
    dry_run: bool,
    options: HashOptions,
    rules: MatchRules,
) -> tuple[list[ScanMatch], str | None]:
    """Fingerprint one file found at `location` (a path or URL) and queue its matches."""
    [outcome] = run_in_process(hash_work, [(path, (path, options))])
    if outcome.error is not None:
        if not dry_run:
            with workspace.session() as session:
                session.add(ScannedItem(location=location, error=outcome.error))
        return [], outcome.error
    return record_signals(workspace, outcome.value, location, dry_run, rules), None


def record_signals(
    workspace: Workspace,
    signals: MediaSignals,
    location: str,
    dry_run: bool = False,
    rules: MatchRules = MatchRules(),
) -> list[ScanMatch]:
    """Match already-computed signals and (unless dry run) record item, matches, takedowns."""
    with workspace.session() as session:
        if dry_run:
            findings = find_matches(session, workspace.banks, signals, rules)
            return [_scan_match(location, finding, None) for finding in findings]
        _item, matches = record_item(session, workspace, signals, location, rules)
        return matches


@dataclass(frozen=True)
class RecordedItem:
    """A scanned item as written: its id, what the caller needs of it, and its signal rows
    (with their ids, for the crawl-history index)."""

    id: int
    location: str
    modality: str | None
    sha256: str | None
    signals: list[Signal]


def record_item(
    session: Session,
    workspace: Workspace,
    signals: MediaSignals,
    location: str,
    rules: MatchRules = MatchRules(),
    findings: list[Finding] | None = None,
) -> tuple[RecordedItem, list[ScanMatch]]:
    """Inside the caller's transaction: the item, its signals, its matches and takedowns
    (`findings`: the matches when the caller already searched the banks for them).

    The item and its signals go in as Core inserts (one row, then one executemany with
    RETURNING): a crawl records thousands of items, and the ORM's unit of work was a
    crawl's dearest bookkeeping (benchmarks/RESULTS.md, "crawl"). Only an item that
    matched is loaded as an ORM object, for the queue."""
    if findings is None:
        findings = find_matches(session, workspace.banks, signals, rules)
    item_id = session.execute(
        insert(ScannedItem)
        .values(
            location=location,
            modality=signals.modality,
            mime=signals.mime,
            size=signals.size,
            sha256=signals.sha256,
            md5=signals.md5,
        )
        .returning(ScannedItem.id)
    ).scalar_one()
    rows = signal_rows(signals)
    if rows:
        # On the table, not the ORM entity: the ORM's bulk path costs more per item.
        signal_table = Signal.__table__
        ids = (
            session.connection()
            .execute(
                signal_table.insert().returning(signal_table.c.id, sort_by_parameter_order=True),
                [
                    {**{c: getattr(row, c) for c in SIGNAL_COLUMNS}, "item_id": item_id}
                    for row in rows
                ],
            )
            .scalars()
        )
        for row, signal_id in zip(rows, ids, strict=True):
            row.id, row.item_id = signal_id, item_id
    recorded = RecordedItem(item_id, location, signals.modality, signals.sha256, rows)
    if not findings:
        return recorded, []
    item = session.get_one(ScannedItem, item_id)
    matches = [
        _scan_match(location, finding, queue_finding(session, workspace.actor, item, finding))
        for finding in findings
    ]
    return recorded, matches


def _scan_match(location: str, finding: Finding, takedown_id: int | None) -> ScanMatch:
    decision = finding.decision
    return ScanMatch(
        location,
        finding.case_id,
        finding.reference_id,
        decision.signal,
        decision.distance,
        decision.explanation,
        takedown_id,
    )


def host_of(location: str) -> str | None:
    return urlsplit(location).hostname if "://" in location else None


def queue_finding(session: Session, actor: str, item: ScannedItem, finding: Finding) -> int:
    """Record the match; create the takedown for (location, case) unless it exists.

    Two scans of one URL for one case at once (PostgreSQL, two processes) both find no item
    there; the insert skips on the (location, case, generation) conflict and the loser
    returns the winner's item, which its own statement now sees (READ COMMITTED)."""
    decision = finding.decision
    match = Match(
        item_id=item.id,
        reference_id=finding.reference_id,
        signal=decision.signal,
        distance=decision.distance,
        score=decision.score,
        explanation=decision.explanation,
        region=json.dumps(decision.region) if decision.region else None,
    )
    session.add(match)
    session.flush()
    existing = reappearance.current_at(session, item.location, finding.case_id)
    if existing is not None and existing.status != "removed":
        return existing.id
    # Back after a verified removal, here or (no item here yet) at another URL.
    removed = existing or reappearance.latest_removed(session, finding.reference_id)
    takedown_id = _insert_unless_queued(
        session,
        case_id=finding.case_id,
        reference_id=finding.reference_id,
        item_id=item.id,
        match_id=match.id,
        location=item.location,
        host=host_of(item.location),
        status="new",
        generation=existing.generation + 1 if existing is not None else 0,
        reappearance_of=removed.id if removed is not None else None,
    )
    if takedown_id is None:  # a concurrent scan queued this (location, case) first
        winner = reappearance.current_at(session, item.location, finding.case_id)
        assert winner is not None, "a conflicting takedown must be visible once committed"
        return winner.id
    takedown = session.get_one(Takedown, takedown_id)
    session.add(
        TakedownEvent(takedown_id=takedown.id, from_status=None, to_status="new", actor=actor)
    )
    audit.record(
        session,
        actor,
        "queue.new",
        f"takedown:{takedown.id}",
        {
            "case": finding.case_id,
            "reference": finding.reference_id,
            "signal": decision.signal,
            "reappearance_of": takedown.reappearance_of,
        },
    )
    if removed is not None:
        transition(
            session, removed, "reappeared", actor, f"back at {item.location} as item {takedown.id}"
        )
    return takedown.id


def _insert_unless_queued(session: Session, **values: Any) -> int | None:
    """INSERT ... ON CONFLICT (location, case, generation) DO NOTHING: the new id, or None
    when that takedown exists (committed by a concurrent transaction)."""
    dialect = session.get_bind().dialect.name
    if dialect not in CONFLICT_INSERTS:
        raise NotImplementedError(f"no conflict-safe takedown insert for {dialect}")
    statement = (
        CONFLICT_INSERTS[dialect](Takedown)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["location", "case_id", "generation"])
        .returning(Takedown.id)
    )
    return session.execute(statement).scalar()
