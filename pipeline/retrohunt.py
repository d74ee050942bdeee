"""Retro-hunt: a new reference is queried against the crawl history (the signals of
everything crawled before), so a victim who reports today learns at once where the
material already appeared. Hits become matches and takedowns like a crawl's.

Same banks, same signal types and the same decisions as a scan
(`pipeline.matching.best_decisions`), run the other way round
(`Direction.RETRO_HUNT`): the reference is the query, crawled items are the owners.

The history keeps no ORB features of crawled images (`pipeline.crawl.history`): PDQ and
the descriptor propose candidates, and a candidate that the robust decision picks for
verification is fetched again through the crawler's guarded fetcher and verified on the
fresh bytes. A candidate whose URL is gone (or now serves other bytes) is recorded as
such, with when it was last seen and its sealed evidence, if any.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansim.casework.recheck import classify
from ansim.casework.workspace import Workspace
from ansim.crawler.fetch import BLOCKED, CONNECTION_ERROR, TIMEOUT, Fetcher
from ansim.crawler.urls import host_key
from ansim.detector.decision import MatchRules
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import local_features_file
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.signals import MediaSignals
from ansim.pipeline.bank_reader import StoreBankReader
from ansim.pipeline.banks import Banks
from ansim.pipeline.file_hashing import budgeted_options
from ansim.pipeline.matching import Finding, best_decisions
from ansim.pipeline.recheck_service import RecheckFetch
from ansim.pipeline.scanning import ScanMatch, queue_finding
from ansim.pipeline.workers import Budgets, ItemBudget, run_in_process
from ansim.store import audit
from ansim.store.tables import Evidence, Reference, ScannedItem
from sqlalchemy import select
from sqlalchemy.orm import Session

# Fetch outcomes that say the host itself did not answer (no name, refused, silent): the
# hunt's other items on that host are not fetched again (`_refetch_host`).
HOST_DOWN_OUTCOMES = frozenset({CONNECTION_ERROR, BLOCKED, TIMEOUT})


def history_banks(workspace: Workspace) -> Banks:
    """A fresh handle on the crawl history's banks (nothing loaded yet)."""
    return Banks(workspace.home.index_dir, owner="item")


@dataclass
class Refetched:
    """A candidate crawled item fetched again to verify it: what its URL gave now."""

    item_id: int
    location: str
    # "online" (same bytes, verified on them), "gone" (404/410/451 or a removal page),
    # "replaced" (other bytes now), "unreachable", or "undecodable".
    verdict: str
    reason: str
    last_seen: str  # when the crawl fetched it (ISO 8601, UTC)
    evidence_bundles: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "location": self.location,
            "verdict": self.verdict,
            "reason": self.reason,
            "last_seen": self.last_seen,
            "evidence_bundles": self.evidence_bundles,
        }


@dataclass
class HuntResult:
    matches: list[ScanMatch] = field(default_factory=list)
    # Candidates fetched again for verification whose bytes are no longer there.
    not_online: list[Refetched] = field(default_factory=list)


class RefetchingHistoryReader(StoreBankReader):
    """The crawl history, whose items' ORB features are computed on the fresh bytes of their
    URL when a verification asks for them (at most the verification budget per query).

    The items a verification asks for are fetched all at once: one host's one after
    another (the crawler's politeness), hosts side by side, so the hunt waits for its
    slowest host rather than for the sum of every fetch."""

    def __init__(self, session: Session, banks: Banks, fetching: RecheckFetch) -> None:
        super().__init__(session, banks)
        self.fetching = fetching
        self.refetched: dict[int, Refetched] = {}
        self._fresh: dict[int, LocalFeatures | None] = {}

    def local_features_of(self, owner_ids: set[int]) -> Mapping[int, LocalFeatures]:
        # Items crawled before the history stopped keeping ORB features still have them.
        stored = super().local_features_of(owner_ids)
        wanted = sorted(owner_ids - set(stored) - set(self._fresh))
        if wanted:
            self._fresh.update(asyncio.run(self._refetch_all(wanted)))
        fresh = {owner: self._fresh[owner] for owner in owner_ids if owner not in stored}
        return {**stored, **{owner: f for owner, f in fresh.items() if f is not None}}

    async def _refetch_all(self, item_ids: list[int]) -> dict[int, LocalFeatures | None]:
        by_host: dict[str, list[ScannedItem]] = defaultdict(list)
        features: dict[int, LocalFeatures | None] = {}
        for item_id in item_ids:
            item = self._session.get(ScannedItem, item_id)
            if item is None or item.modality != "image" or "://" not in item.location:
                features[item_id] = None  # a scanned file or a video frame: nothing to fetch
            else:
                by_host[host_key(item.location)].append(item)
        async with self.fetching.fetcher() as fetcher:
            for found in await asyncio.gather(
                *(self._refetch_host(fetcher, items) for items in by_host.values())
            ):
                features.update(found)
        return features

    async def _refetch_host(
        self, fetcher: Fetcher, items: list[ScannedItem]
    ) -> dict[int, LocalFeatures | None]:
        """One host's items in turn; once the host itself does not answer (its name does
        not resolve, it refuses or stays silent), its other items get the same verdict
        without another try: a host taken down takes all its items with it."""
        features: dict[int, LocalFeatures | None] = {}
        host_down: tuple[str, str] | None = None
        for item in items:
            if host_down is None:
                verdict, reason, features[item.id], outcome = await _fetch_and_extract(
                    fetcher, item.location, item.sha256
                )
                if outcome in HOST_DOWN_OUTCOMES:
                    host_down = (verdict, f"{reason} (the host, for this hunt's later items)")
            else:
                verdict, reason = host_down
                features[item.id] = None
            self.refetched[item.id] = self._record(item, verdict, reason)
        return features

    def _record(self, item: ScannedItem, verdict: str, reason: str) -> Refetched:
        bundles = self._session.execute(
            select(Evidence.bundle_id).where(Evidence.item_id == item.id).distinct()
        ).scalars()
        return Refetched(
            item.id,
            item.location,
            verdict,
            reason,
            item.scanned_at.isoformat(timespec="seconds"),
            list(bundles),
        )


async def _fetch_and_extract(
    fetcher: Fetcher, url: str, crawled_sha256: str | None
) -> tuple[str, str, LocalFeatures | None, str]:
    """(verdict, reason, ORB features when the same bytes are still there, the fetch's
    outcome) for one URL. The features are extracted in a thread, so the other hosts'
    fetches go on meanwhile."""
    fetched = await fetcher.fetch(url)
    try:
        outcome = classify(fetched, crawled_sha256, None)
        if outcome.replaced:
            return "replaced", outcome.reason, None, fetched.outcome
        if outcome.verdict != "online" or fetched.body_path is None:
            return outcome.verdict, outcome.reason, None, fetched.outcome
        features, error = await asyncio.to_thread(_features_of, fetched.body_path)
        if features is None:
            return "undecodable", error or "no features", None, fetched.outcome
        return "online", outcome.reason, features, fetched.outcome
    finally:
        fetched.discard()


def _features_of(body: Path) -> tuple[LocalFeatures | None, str | None]:
    """ORB features of a fetched body, under the image budget (any decoder error is its)."""
    budgets = Budgets()
    options = budgeted_options(HashOptions(), budgets).image

    def extract(path: Path, budget: ItemBudget) -> LocalFeatures:
        budget.begin("image")
        return local_features_file(path, options)

    [outcome] = run_in_process(extract, [(body, body)], budgets)
    return outcome.value, outcome.error


def hunt(
    session: Session,
    workspace: Workspace,
    history: Banks,
    reference_id: int,
    signals: MediaSignals,
    rules: MatchRules = MatchRules(),
    fetching: RecheckFetch | None = None,
) -> HuntResult:
    """Match one reference's signals against every crawled item and queue the hits.
    `fetching`: how candidates are fetched again (default: as re-checks fetch, loopback
    only where the settings allow it)."""
    reference = session.get(Reference, reference_id)
    if reference is None or reference.consent != "given":
        return HuntResult()
    fetching = fetching or RecheckFetch(allow_loopback=workspace.settings.allow_loopback)
    reader = RefetchingHistoryReader(session, history, fetching)
    best = best_decisions(signals, reader, rules)
    result = HuntResult()
    for item_id, decision in sorted(best.items()):
        item = session.get(ScannedItem, item_id)
        if item is None or "://" not in item.location:
            continue  # only crawled (URL) items have somewhere to take down
        finding = Finding(reference_id, reference.case_id, decision)
        takedown_id = queue_finding(session, workspace.actor, item, finding)
        refetched = reader.refetched.get(item_id)
        explanation = decision.explanation
        if refetched is not None and refetched.verdict == "online":
            explanation += "; verified on the bytes fetched again now"
        result.matches.append(
            ScanMatch(
                item.location,
                reference.case_id,
                reference_id,
                decision.signal,
                decision.distance,
                explanation,
                takedown_id,
            )
        )
    for item_id, refetched in sorted(reader.refetched.items()):
        if refetched.verdict == "online" or item_id in best:
            continue
        result.not_online.append(refetched)
        # Ids and verdicts only: the audit chain is never purged, URLs are victim data.
        audit.record(
            session,
            workspace.actor,
            "retrohunt.refetch",
            f"item:{item_id}",
            {"reference": reference_id, "verdict": refetched.verdict},
            case_id=reference.case_id,
        )
    return result
