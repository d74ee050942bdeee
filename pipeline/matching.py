"""The match pipeline: a file's signals -> index queries -> decisions, per reference.

Each matcher handles one kind of evidence and returns detector Decisions keyed by the
owning reference. A modality adds its matcher to MATCHERS. Only references whose consent
stands are ever returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ansim.detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from ansim.detector.audio_landmarks import query_variants
from ansim.detector.audio_match import matching_alignments
from ansim.detector.decision import (
    Decision,
    MatchRules,
    audio_decision,
    best_pdq_evidence,
    exact_decision,
    pdq_image_decision,
)
from ansim.detector.signals import MediaSignals
from ansim.detector.text import TextSignature
from ansim.detector.text_match import TextMatchPolicy, decide_all
from ansim.indexer.audio_index import QueryLandmarks
from ansim.pipeline.banks import Banks
from ansim.pipeline.image_matching import match_image_robust
from ansim.pipeline.video_matching import match_video, with_frame_time
from ansim.store.tables import Reference, Signal
from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Finding:
    reference_id: int
    case_id: str
    decision: Decision


Matcher = Callable[[Session, Banks, MediaSignals, MatchRules], list[Decision]]


def match_exact(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    rows = session.execute(
        select(Signal.reference_id, Signal.kind)
        .join(Reference, Signal.reference_id == Reference.id)
        .where(
            Reference.consent == "given",
            ((Signal.kind == "sha256") & (Signal.value == signals.sha256))
            | ((Signal.kind == "md5") & (Signal.value == signals.md5)),
        )
    )
    return [exact_decision(reference_id, kind) for reference_id, kind in rows]


def match_image_pdq(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    if signals.modality != "image" or not signals.pdq:
        return []
    if signals.pdq[0].quality < rules.pdq_min_quality:
        return []
    index = banks.index(session, "pdq")
    if not len(index):  # no image references: nothing to search
        return []
    queries = signals.pdq_dihedral or [signals.pdq[0].pdq]
    hits = index.search(queries, rules.pdq_max_distance)
    as_pairs = [[(hit.entry_id, hit.distance) for hit in variant_hits] for variant_hits in hits]
    owners = banks.owners_of(session, {entry_id for pairs in as_pairs for entry_id, _ in pairs})
    evidence = best_pdq_evidence(as_pairs, owners)
    return [
        with_frame_time(session, d, e.entry_id)
        for e in evidence.values()
        if (d := pdq_image_decision(e, rules)) is not None
    ]


def match_text(
    session: Session,
    banks: Banks,
    signals: MediaSignals,
    rules: MatchRules,
    policy: TextMatchPolicy = TextMatchPolicy(),
) -> list[Decision]:
    """Same normalized text (SHA-256 equal), else MinHash LSH candidates verified exactly."""
    signature = signals.extra.get("minhash")
    if signals.modality != "text" or not isinstance(signature, TextSignature):
        return []
    same_text = session.execute(
        select(Signal.reference_id)
        .join(Reference, Signal.reference_id == Reference.id)
        .where(
            Reference.consent == "given",
            Signal.kind == "text_sha256",
            Signal.value == signals.extra.get("normalized_sha256"),
        )
    ).scalars()
    decisions = [
        Decision(owner, "text_sha256", 0.0, 1.0, "same text after normalization")
        for owner in same_text
    ]
    index = banks.index(session, "text")
    hits = index.search([signature], policy.search_floor)[0] if len(index) else []
    verdicts = decide_all(hits, policy)
    owners = banks.owners_of(session, {verdict.entry_id for verdict in verdicts})
    decisions += [
        Decision(owners[v.entry_id], f"text_{v.rule}", 1.0 - v.score, v.score, v.explanation)
        for v in verdicts
        if v.entry_id in owners
    ]
    return decisions


def match_audio(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    """Audio (and video soundtracks): landmark votes, then peak-level verification. Against
    the crawl history (a retro-hunt) the owners are crawled items."""
    fingerprint = signals.extra.get(AUDIO_SIGNAL)
    if fingerprint is None:
        return []
    index = banks.index(session, "audio")
    variants = query_variants(fingerprint.frames, fingerprint.pitches)
    votes = index.vote([QueryLandmarks(marks.hashes, marks.times) for _, marks in variants])
    owners = banks.owners_of(session, {vote.entry_id for vote in votes})
    alignments = matching_alignments(
        fingerprint.frames,
        fingerprint.pitches,
        [vote for vote in votes if vote.entry_id in owners],
        [variant for variant, _ in variants],
        index.peaks,
        rules.audio,
    )
    best: dict[int, Decision] = {}
    for alignment in alignments:
        if banks.owner != "reference":
            alignment = alignment.swapped()  # a retro-hunt: the reference was the query
        decision = audio_decision(alignment, owners[alignment.entry_id])
        if decision.owner_id not in best or decision.score > best[decision.owner_id].score:
            best[decision.owner_id] = decision
    return list(best.values())


MATCHERS: list[Matcher] = [
    match_exact,
    match_image_pdq,
    match_image_robust,
    match_text,
    match_video,
    match_audio,
]


def find_matches(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules = MatchRules()
) -> list[Finding]:
    """Every reference this file matches, with the strongest evidence for each."""
    best: dict[int, Decision] = {}
    for matcher in MATCHERS:
        for decision in matcher(session, banks, signals, rules):
            current = best.get(decision.owner_id)
            if current is None or decision.score > current.score:
                best[decision.owner_id] = decision
    if not best:
        return []
    case_of = dict(
        session.execute(select(Reference.id, Reference.case_id).where(Reference.id.in_(best))).all()
    )
    return [
        Finding(reference_id, case_of[reference_id], decision)
        for reference_id, decision in sorted(best.items())
    ]
