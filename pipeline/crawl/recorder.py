"""The recorder: what a crawl leaves behind. Items with their signals and matches,
evidence bundles for matches, the run's summary (in memory and on its `crawl_run` row)
and the run's log file."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import evidence_key_context, seal_bundle
from ansim.crawler.fetch import FetchResult
from ansim.detector.decision import MatchRules
from ansim.detector.signals import MediaSignals
from ansim.pipeline.crawl.history import history_signals
from ansim.pipeline.matching import Finding
from ansim.pipeline.scanning import RecordedItem, ScanMatch, record_item
from ansim.store.tables import CrawlRun, Evidence, utcnow
from sqlalchemy.orm import Session

log = logging.getLogger("ansim.crawl")

MAX_LISTED_MATCHES = 1000


@dataclass
class CrawlSummary:
    run_id: int
    pages: int = 0
    media: int = 0
    media_hashed: int = 0
    media_duplicate_content: int = 0
    # Images whose ORB features were computed for verification (a candidate was open).
    images_local_features: int = 0
    texts_hashed: int = 0
    matches: int = 0
    match_list: list[dict[str, Any]] = field(default_factory=list)
    takedowns: list[int] = field(default_factory=list)
    evidence: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    seconds_to_last_match: float | None = None
    elapsed_s: float = 0.0
    log_path: str | None = None
    resumed: bool = False

    def loggable(self) -> dict[str, Any]:
        """The summary without URLs (log files are not purged)."""
        summary = self.as_dict()
        summary.pop("match_list")
        return summary

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started")
        out["outcomes"] = dict(sorted(self.outcomes.items()))
        out["takedowns"] = sorted(set(self.takedowns))
        out["pages_per_s"] = round(self.pages / self.elapsed_s, 2) if self.elapsed_s else None
        out["media_per_s"] = round(self.media / self.elapsed_s, 2) if self.elapsed_s else None
        return out


class Recorder:
    def __init__(self, workspace: Workspace, run_id: int, rules: MatchRules) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.rules = rules
        self.summary = CrawlSummary(run_id=run_id)
        self.evidence_dir = workspace.home.evidence_dir
        # Items written in the batch being written; handed on once it commits.
        self._written: list[tuple[RecordedItem, list[ScanMatch]]] = []

    @contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """The `ansim` loggers into this run's own file under the home's log folder."""
        log_dir = self.workspace.home.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"crawl-{self.run_id}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger("ansim")
        previous_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        self.summary.log_path = str(path)
        with self.workspace.session() as session:
            session.get(CrawlRun, self.run_id).log_path = str(path)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            handler.close()

    def record_media(
        self,
        session: Session,
        location: str,
        signals: MediaSignals,
        findings: list[Finding],
        result: FetchResult,
        page: FetchResult | None,
    ) -> tuple[int, bool]:
        """A media item, its signals and matches, and for a match its takedowns and one
        evidence bundle (the page, if any, and the media). Returns (item id, matched)."""
        item, matches = record_item(
            session, self.workspace, history_signals(signals), location, self.rules, findings
        )
        if matches:
            fetches = ([("page", page)] if page is not None else []) + [("media", result)]
            bundle, bundle_key = seal_bundle(
                self.evidence_dir,
                fetches,
                note=f"ansim crawl run {self.run_id}: match at {location}",
            )
            # The bundle's own key, wrapped: purging the rows crypto-shreds the bundle.
            wrapped_key = self.workspace.cipher.encrypt(
                bundle_key, evidence_key_context(bundle.bundle_id)
            )
            for takedown_id in sorted({m.takedown_id for m in matches if m.takedown_id}):
                session.add(
                    Evidence(
                        bundle_id=bundle.bundle_id,
                        takedown_id=takedown_id,
                        item_id=item.id,
                        page_url=page.final_url if page is not None else None,
                        media_url=location,
                        warc_sha256=bundle.warc_sha256,
                        records=bundle.records,
                        data_key_encrypted=wrapped_key,
                    )
                )
            self.summary.evidence += 1
        session.flush()
        self._written.append((item, matches))
        return item.id, bool(matches)

    def record_text(
        self,
        session: Session,
        location: str,
        signals: MediaSignals,
        findings: list[Finding],
        page: FetchResult,
    ) -> None:
        """A page's text as an item; a match gets the page as evidence."""
        item, matches = record_item(
            session, self.workspace, signals, location, self.rules, findings
        )
        if matches:
            bundle, bundle_key = seal_bundle(
                self.evidence_dir,
                [("page", page)],
                note=f"ansim crawl run {self.run_id}: text match",
            )
            session.add(
                Evidence(
                    bundle_id=bundle.bundle_id,
                    takedown_id=next((m.takedown_id for m in matches if m.takedown_id), None),
                    item_id=item.id,
                    page_url=page.final_url,
                    media_url=location,
                    warc_sha256=bundle.warc_sha256,
                    records=bundle.records,
                    data_key_encrypted=self.workspace.cipher.encrypt(
                        bundle_key, evidence_key_context(bundle.bundle_id)
                    ),
                )
            )
        session.flush()
        self._written.append((item, matches))

    def take_written(self) -> list[tuple[RecordedItem, list[ScanMatch]]]:
        """The items of the batch just written (once it committed), each with its matches."""
        written, self._written = self._written, []
        return written

    def note_matches(self, matches: list[ScanMatch]) -> None:
        summary = self.summary
        summary.matches += len(matches)
        summary.takedowns += [m.takedown_id for m in matches if m.takedown_id]
        summary.seconds_to_last_match = time.monotonic() - summary.started
        for m in matches:
            log.warning("match -> takedown %s: %s", m.takedown_id, m.signal)
            if len(summary.match_list) < MAX_LISTED_MATCHES:
                summary.match_list.append(m.as_dict())

    def close_run(self, finished: bool) -> None:
        """The summary onto the run's row; the run is finished unless it was stopped early."""
        self.summary.elapsed_s = time.monotonic() - self.summary.started
        with self.workspace.session() as session:
            run = session.get(CrawlRun, self.run_id)
            if finished:
                run.status, run.finished_at = "finished", utcnow()
            run.summary = json.dumps(self.summary.as_dict())
        log.info("crawl run %d done: %s", self.run_id, json.dumps(self.summary.loggable()))
