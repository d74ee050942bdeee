"""Retro-hunt: a new reference is queried against the crawl history (the signals of
everything crawled before), so a victim who reports today learns at once where the
material already appeared. Hits become matches and takedowns like a crawl's.

Same index code as the reference bank (casework.banks with owner "item"), same decision
rules (detector.decision, and for crops, pads and screenshots the robust image matcher
with its calibrated thresholds), run the other way round: the reference is the query.
"""

from __future__ import annotations

from ansim.casework.workspace import Workspace
from ansim.detector.decision import (
    Decision,
    MatchRules,
    best_pdq_evidence,
    exact_decision,
    pdq_image_decision,
)
from ansim.detector.signals import MediaSignals
from ansim.detector.text import TextSignature
from ansim.detector.text_match import TextMatchPolicy, decide_all
from ansim.detector.video import VideoHashes
from ansim.detector.video_match import FramePair, VideoSide, align, format_time
from ansim.indexer.text_index import TextHit
from ansim.pipeline.banks import Banks
from ansim.pipeline.image_matching import match_image_robust
from ansim.pipeline.matching import Finding, match_audio
from ansim.pipeline.scanning import ScanMatch, queue_finding
from ansim.pipeline.video_matching import VPDQ_KIND, video_rules, video_sides
from ansim.store.tables import Reference, ScannedItem, Signal
from sqlalchemy import select
from sqlalchemy.orm import Session


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
        + _video(session, history, signals, rules)
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
    whole (window MinHashes are not stored); the history's index is exact
    (`ScanTextIndex`), so it finds a short post among much other text all the same."""
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


def _video(
    session: Session, history: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    """Crawled videos that copy a new video reference, and crawled images that are one of
    its frames. The reference's usable frames (and their centred crops) are searched in the
    history's PDQ index; a crawled video's hits are aligned in time with the crawled video
    as the query, so the explanation reads as it does for a crawl."""
    hashes = signals.extra.get(VPDQ_KIND)
    if signals.modality != "video" or not isinstance(hashes, VideoHashes):
        return []
    vrules = video_rules(rules)
    frames = hashes.usable(vrules.min_quality) + hashes.usable_variants(vrules.min_quality)
    if not frames:
        return []
    found = history.index(session, "pdq").search([f.pdq for f in frames], vrules.vote_distance)
    frame_of_entry = _crawled_frames(session, {h.entry_id for hits in found for h in hits})
    item_sides = video_sides(session, {item for item, _ in frame_of_entry.values()}, Signal.item_id)
    pairs: dict[int, list[FramePair]] = {}
    best_still: dict[int, tuple[int, float]] = {}  # crawled image -> (distance, frame time)
    for frame, hits in zip(frames, found, strict=True):
        for hit in hits:
            if hit.entry_id not in frame_of_entry:
                continue
            item_id, item_time = frame_of_entry[hit.entry_id]
            if item_id in item_sides:
                pairs.setdefault(item_id, []).append(
                    FramePair(item_time, frame.timestamp, hit.distance)
                )
            elif hit.distance <= vrules.max_distance:
                seen = (hit.distance, frame.timestamp)
                best_still[item_id] = min(best_still.get(item_id, seen), seen)
    decisions = [
        Decision(
            item_id,
            "pdq",
            float(distance),
            1.0 - distance / 256.0,
            f"crawled image = the frame at {format_time(time)} of the reference video "
            f"(PDQ distance {distance}/256)",
        )
        for item_id, (distance, time) in best_still.items()
    ]
    reference_side = VideoSide.of(hashes.frames, [not flat for flat in hashes.uniform])
    for item_id, item_pairs in pairs.items():
        alignment = align(item_id, item_pairs, item_sides[item_id], reference_side, vrules)
        if alignment is not None and alignment.matched:
            decisions.append(
                Decision(
                    item_id,
                    VPDQ_KIND,
                    alignment.mean_distance,
                    1.0 - alignment.mean_distance / 256.0,
                    f"already crawled: {alignment.explanation()}",
                )
            )
    return decisions


def _crawled_frames(session: Session, entry_ids: set[int]) -> dict[int, tuple[int, float]]:
    """history PDQ entry -> (crawled item, time of that frame in it; 0 for an image)."""
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Signal.id, Signal.item_id, Signal.timestamp).where(
            Signal.id.in_(entry_ids), Signal.item_id.is_not(None)
        )
    )
    return {signal_id: (item_id, stamp or 0.0) for signal_id, item_id, stamp in rows}
