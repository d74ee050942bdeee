"""Retro-hunt: a new reference is queried against the crawl history (the signals of
everything crawled before), so a victim who reports today learns at once where the
material already appeared. Hits become matches and takedowns like a crawl's.

Same banks, same signal types and the same decisions as a scan
(`pipeline.matching.best_decisions`), run the other way round
(`Direction.RETRO_HUNT`): the reference is the query, crawled items are the owners.
"""

from __future__ import annotations

from ansim.casework.workspace import Workspace
from ansim.detector.decision import MatchRules
from ansim.detector.signals import MediaSignals
from ansim.pipeline.bank_reader import StoreBankReader
from ansim.pipeline.banks import Banks
from ansim.pipeline.matching import Finding, best_decisions
from ansim.pipeline.scanning import ScanMatch, queue_finding
from ansim.store.tables import Reference, ScannedItem
from sqlalchemy.orm import Session


def history_banks(workspace: Workspace) -> Banks:
    """A fresh handle on the crawl history's banks (nothing loaded yet)."""
    return Banks(workspace.home.index_dir, owner="item")


def hunt(
    session: Session,
    workspace: Workspace,
    history: Banks,
    reference_id: int,
    signals: MediaSignals,
    rules: MatchRules = MatchRules(),
) -> list[ScanMatch]:
    """Match one reference's signals against every crawled item and queue the hits."""
    reference = session.get(Reference, reference_id)
    if reference is None or reference.consent != "given":
        return []
    best = best_decisions(signals, StoreBankReader(session, history), rules)
    matches = []
    for item_id, decision in sorted(best.items()):
        item = session.get(ScannedItem, item_id)
        if item is None or "://" not in item.location:
            continue  # only crawled (URL) items have somewhere to take down
        finding = Finding(reference_id, reference.case_id, decision)
        takedown_id = queue_finding(session, workspace.actor, item, finding)
        matches.append(
            ScanMatch(
                item.location,
                reference.case_id,
                reference_id,
                decision.signal,
                decision.distance,
                decision.explanation,
                takedown_id,
            )
        )
    return matches
