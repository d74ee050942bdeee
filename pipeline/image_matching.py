"""The robust image matcher: PDQ near misses, descriptor neighbours and local-feature votes
become candidates; each is decided by `detector.image_decision` with geometric
verification against the reference's stored ORB features.

It adds to the plain PDQ matcher (which still runs first): an item that PDQ already
matches keeps that match, and this matcher finds the crops, rotations, frames,
screenshots and pastes that PDQ misses.
"""

from __future__ import annotations

from functools import lru_cache

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.descriptor import Descriptor
from ansim.detector.image_decision import (
    CALIBRATION_FILE,
    PDQ_NO_EVIDENCE,
    VERIFICATION_BUDGET,
    Candidate,
    Evidence,
    Thresholds,
    decide,
    judge_candidates,
)
from ansim.detector.image_decision import Decision as ImageDecision
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.signals import MediaSignals
from ansim.pipeline.banks import Banks
from sqlalchemy.orm import Session

DESCRIPTOR_NEIGHBOURS = 10
LOCAL_FEATURE_CANDIDATES = 10


@lru_cache(maxsize=1)
def decision_thresholds() -> Thresholds:
    return Thresholds.load(CALIBRATION_FILE)


def _pdq_distances(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> dict[int, int]:
    """Reference id -> smallest PDQ distance over the dihedral variants, up to
    PDQ_NO_EVIDENCE bits."""
    distances: dict[int, int] = {}
    if signals.pdq and signals.pdq[0].quality >= rules.pdq_min_quality:
        queries = signals.pdq_dihedral or [signals.pdq[0].pdq]
        hits = [
            h
            for variant in banks.index(session, "pdq").search(queries, PDQ_NO_EVIDENCE)
            for h in variant
        ]
        owners = banks.owners_of(session, {h.entry_id for h in hits})
        for hit in hits:
            if hit.entry_id in owners:
                owner = owners[hit.entry_id]
                distances[owner] = min(hit.distance, distances.get(owner, 256))
    return distances


def _descriptor_similarities(
    session: Session, banks: Banks, signals: MediaSignals
) -> dict[int, float]:
    """Reference id -> best descriptor similarity among the query's nearest neighbours."""
    similarities: dict[int, float] = {}
    descriptor: Descriptor | None = signals.extra.get(DESCRIPTOR_KIND)
    if descriptor is not None:
        hits = banks.index(session, "descriptor").search(
            descriptor.vector[None], DESCRIPTOR_NEIGHBOURS
        )[0]
        owners = banks.owners_of(session, {h.entry_id for h in hits}, descriptor.model_id)
        for hit in hits:
            if hit.entry_id in owners:
                owner = owners[hit.entry_id]
                similarities[owner] = max(hit.similarity, similarities.get(owner, -1.0))
    return similarities


def gather_candidates(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Candidate]:
    distances = _pdq_distances(session, banks, signals, rules)
    similarities = _descriptor_similarities(session, banks, signals)
    votes: dict[int, int] = {}
    features: LocalFeatures | None = signals.extra.get(LOCAL_FEATURES_KIND)
    if features is not None and not rules.image_triage:
        hits = banks.index(session, "local_features").search([features], LOCAL_FEATURE_CANDIDATES)[
            0
        ]
        owners = banks.owners_of(session, {h.entry_id for h in hits})
        for hit in hits:
            if hit.entry_id in owners:
                owner = owners[hit.entry_id]
                votes[owner] = votes.get(owner, 0) + hit.votes
    return [
        Candidate(owner, distances.get(owner), similarities.get(owner), votes.get(owner, 0))
        for owner in sorted(set(distances) | set(similarities) | set(votes))
    ]


def _without_verification(candidate: Candidate) -> ImageDecision:
    """The decision on PDQ and the descriptor alone. Its score is above zero where either
    puts the reference above "no evidence" (within PDQ_NO_EVIDENCE bits, above the
    descriptor's calibrated floor)."""
    evidence = Evidence(candidate.pdq_distance, candidate.descriptor_similarity)
    return decide(evidence, decision_thresholds(), candidate.owner_id)


def _has_open_evidence(candidate: Candidate) -> bool:
    """Some evidence, but no match without verification: verification would decide it."""
    decided = _without_verification(candidate)
    return not decided.matched and decided.score > 0.0


def needs_local_features(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules = MatchRules()
) -> bool:
    """Whether an image hashed without ORB features should get them before matching.

    Yes where there is no descriptor (local features are then the only evidence beyond
    PDQ). Otherwise only when some reference that PDQ does not match is left open with
    evidence (`_has_open_evidence`): triage verifies only candidates with evidence, so an
    image without such a candidate cannot be matched by verification.

    What triage gives up, for a bulk crawl: the local-feature index as a third source of
    candidates, i.e. copies that PDQ and the descriptor both put at the level of an
    unrelated photo (the robust benchmark's pastes and screenshots)."""
    if signals.modality != "image" or LOCAL_FEATURES_KIND in signals.extra:
        return False
    if DESCRIPTOR_KIND not in signals.extra:
        return True
    if not len(banks.index(session, "pdq")) and not len(banks.index(session, "descriptor")):
        return False  # no image references at all
    distances = _pdq_distances(session, banks, signals, rules)
    similarities = _descriptor_similarities(session, banks, signals)
    return any(
        _has_open_evidence(Candidate(owner, distances.get(owner), similarities.get(owner)))
        for owner in set(distances) | set(similarities)
    )


def match_image_robust(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    """Owners (references, or crawled items when `banks` is the crawl history and the
    query is a new reference) that this image copies beyond what PDQ alone matches."""
    if signals.modality != "image":
        return []
    if DESCRIPTOR_KIND not in signals.extra and LOCAL_FEATURES_KIND not in signals.extra:
        return []  # hashed PDQ-only (hash lists): the PDQ matcher is all there is
    # What PDQ matches on its own is the PDQ matcher's (same rule, no verification cost).
    candidates = [
        c
        for c in gather_candidates(session, banks, signals, rules)
        if c.pdq_distance is None or c.pdq_distance > rules.pdq_max_distance
    ]
    if rules.image_triage:  # candidates without any evidence are not verified
        candidates = [c for c in candidates if _without_verification(c).score > 0.0]
    if not candidates:
        return []
    features = banks.local_features_of(session, {c.owner_id for c in candidates})
    decisions = judge_candidates(
        candidates,
        signals.extra.get(LOCAL_FEATURES_KIND),
        features.get,
        decision_thresholds(),
        VERIFICATION_BUDGET,
        query_is_reference=banks.owner != "reference",
    )
    return [_as_match(d) for d in decisions if d.matched]


def _as_match(decision: ImageDecision) -> Decision:
    return Decision(
        owner_id=decision.owner_id,
        signal="+".join(decision.fired),  # e.g. "descriptor+verification"
        distance=round(1.0 - decision.score, 4),
        score=decision.score,
        explanation=decision.explanation,
    )
