"""Retro-hunt: a new reference is queried against the crawl history (the signals of
everything crawled before), so a victim who reports today learns at once where the
material already appeared. Hits become matches and takedowns like a crawl's.

Same index code as the reference bank (casework.banks with owner "item"), same decision
rules (detector.decision, and for crops, pads and screenshots the robust image matcher
with its calibrated thresholds), run the other way round: the reference is the query.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from casework.banks import Banks
from casework.image_matching import match_image_robust
from casework.matching import Finding, match_audio
from casework.models import Reference, ScannedItem
from casework.scanning import ScanMatch, queue_finding
from casework.workspace import Workspace
from detector.decision import (
    Decision,
    MatchRules,
    best_pdq_evidence,
    exact_decision,
    pdq_image_decision,
)
from detector.signals import MediaSignals
from detector.text import TextSignature
from detector.text_match import TextMatchPolicy, decide_all
from indexer.text_index import TextHit


def history_banks(workspace: Workspace) -> Banks:
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
    best: dict[int, Decision] = {}
    found = (
        _exact(session, signals)
        + _pdq(session, history, signals, rules)
        + match_image_robust(session, history, signals, rules)
        + _text(session, history, signals)
        + match_audio(session, history, signals, rules)
    )
    for decision in found:
        current = best.get(decision.owner_id)
        if current is None or decision.score > current.score:
            best[decision.owner_id] = decision
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


def _exact(session: Session, signals: MediaSignals) -> list[Decision]:
    rows = session.execute(
        select(ScannedItem.id).where(
            ScannedItem.sha256 == signals.sha256, ScannedItem.error.is_(None)
        )
    ).scalars()
    return [exact_decision(item_id, "sha256") for item_id in rows]


def _pdq(
    session: Session, history: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    if signals.modality != "image" or not signals.pdq:
        return []
    queries = signals.pdq_dihedral or [signals.pdq[0].pdq]
    hits = history.index(session, "pdq").search(queries, rules.pdq_max_distance)
    pairs = [[(hit.entry_id, hit.distance) for hit in variant] for variant in hits]
    owner_of_entry = history.owners_of(
        session, {entry_id for variant in pairs for entry_id, _ in variant}
    )
    evidence = best_pdq_evidence(pairs, owner_of_entry)
    return [d for e in evidence.values() if (d := pdq_image_decision(e, rules)) is not None]


def _text(
    session: Session,
    history: Banks,
    signals: MediaSignals,
    policy: TextMatchPolicy = TextMatchPolicy(),
) -> list[Decision]:
    """Crawled texts that repost this text reference. The roles of the two texts are
    swapped before deciding (here the reference is the query). Crawled pages are indexed
    whole (window MinHashes are not stored), so a short post inside a much longer page is
    found only once that page is crawled again."""
    signature = signals.extra.get("minhash")
    if signals.modality != "text" or not isinstance(signature, TextSignature):
        return []
    hits = history.index(session, "text").search([signature], policy.search_floor)[0]
    swapped = [
        TextHit(h.entry_id, h.shared, h.jaccard, h.query_containment, h.entry_containment)
        for h in hits
    ]
    verdicts = decide_all(swapped, policy)
    owner_of_entry = history.owners_of(session, {v.entry_id for v in verdicts})
    return [
        Decision(owner_of_entry[v.entry_id], f"text_{v.rule}", 1.0 - v.score, v.score,
                 f"already crawled: {v.explanation}")
        for v in verdicts
        if v.entry_id in owner_of_entry
    ]  # fmt: skip
