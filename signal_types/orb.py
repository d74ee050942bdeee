"""ORB local features (grid-spread keypoints, two octaves) of an image, and the robust
image decision they verify: PDQ near misses, descriptor neighbours and local-feature votes
become candidates; each is decided by `detector.image_decision` with geometric
verification against the owner's stored features.

It adds to the plain PDQ decision: an item that PDQ already matches keeps that match, and
this finds the crops, rotations, frames, screenshots and pastes that PDQ misses."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.hashing import Media
from ansim.detector.image_decision import (
    CALIBRATION_FILE,
    VERIFICATION_BUDGET,
    Candidate,
    Evidence,
    Thresholds,
    decide,
    judge_candidates,
)
from ansim.detector.image_decision import Decision as ImageDecision
from ansim.detector.image_robust import (
    COARSE_LOCAL_FEATURES_OPTION,
    LOCAL_FEATURES_OPTION,
    ROBUST_OPTION,
)
from ansim.detector.local_verify import SIGNAL_KIND as NAME
from ansim.detector.local_verify import LocalFeatures, extract_local_features
from ansim.detector.signals import MediaSignals
from ansim.indexer.local_feature_index import (
    BruteForceLocalFeatureIndex,
    FaissLocalFeatureIndex,
    LocalFeatureIndex,
)
from ansim.signal_types.base import BankReader, Direction, IndexSpec, SignalRecord, StoredSignal
from ansim.signal_types.searches import LOCAL_FEATURE_CANDIDATES, ImageSearches

# A retro-hunt is one query per new reference, not one per crawled item, and the history
# keeps no ORB features: every candidate of the short list (PDQ near misses, descriptor
# neighbours) may be fetched again and verified, not only the best two.
RETRO_HUNT_VERIFICATIONS = 32


@lru_cache(maxsize=1)
def decision_thresholds() -> Thresholds:
    return Thresholds.load(CALIBRATION_FILE)


def _add_rows(index: LocalFeatureIndex, rows: Sequence[StoredSignal]) -> None:
    index.add([row.id for row in rows], [LocalFeatures.from_blob(row.blob or b"") for row in rows])


def _probe(index: LocalFeatureIndex, features: LocalFeatures) -> list[tuple[int, float]]:
    hits = index.search([features], LOCAL_FEATURE_CANDIDATES)[0]
    return sorted((hit.entry_id, float(hit.votes)) for hit in hits)


class OrbType:
    name = NAME
    modalities = frozenset({"image"})
    index = IndexSpec(
        create=FaissLocalFeatureIndex,
        load=FaissLocalFeatureIndex.load,
        add_rows=_add_rows,
        brute_force=BruteForceLocalFeatureIndex,
        probe=_probe,
    )

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """ORB features are the dearest image signal: a bulk caller (the crawl) may hash
        without them (`LOCAL_FEATURES_OPTION` False) and add them only for an image that has
        a candidate to verify (`needs_local_features`)."""
        extra = media.options.extra
        if extra.get(ROBUST_OPTION, True) and extra.get(LOCAL_FEATURES_OPTION, True):
            coarse = extra.get(COARSE_LOCAL_FEATURES_OPTION, True)
            signals.extra[self.name] = extract_local_features(media.rgb, coarse)

    def values(self, signals: MediaSignals) -> list[LocalFeatures]:
        features = signals.extra.get(self.name)
        return [features] if features is not None else []

    def records(self, features: LocalFeatures) -> list[SignalRecord]:
        return [
            SignalRecord(
                kind=self.name, value=f"{len(features)} keypoints", blob=features.to_blob()
            )
        ]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: ImageSearches
    ) -> list[Decision]:
        """Owners that this image copies beyond what PDQ alone matches."""
        if signals.modality != "image":
            return []
        if DESCRIPTOR_KIND not in signals.extra and NAME not in signals.extra:
            return []  # no descriptor model and no features: the PDQ decision is all there is
        # What PDQ matches on its own is the PDQ decision's (same rule, no verification cost).
        candidates = [
            c
            for c in _candidates(searches, rules)
            if c.pdq_distance is None or c.pdq_distance > rules.pdq_max_distance
        ]
        if rules.image_triage:  # candidates without any evidence are not verified
            candidates = [c for c in candidates if _without_verification(c).score > 0.0]
        if not candidates:
            return []
        retro_hunt = bank.direction is Direction.RETRO_HUNT
        # A retro-hunt fetches an item again to verify it: not one that matches without.
        settled = {
            c.owner_id for c in candidates if retro_hunt and _without_verification(c).matched
        }
        decisions = judge_candidates(
            candidates,
            signals.extra.get(NAME),
            lambda chosen: bank.local_features_of(chosen - settled),
            decision_thresholds(),
            RETRO_HUNT_VERIFICATIONS if retro_hunt else VERIFICATION_BUDGET,
            query_is_reference=retro_hunt,
        )
        return [_as_match(d) for d in decisions if d.matched]


def _candidates(searches: ImageSearches, rules: MatchRules) -> list[Candidate]:
    distances = searches.pdq_distances
    similarities = searches.descriptor_similarities
    votes = {} if rules.image_triage else searches.local_feature_votes()
    return [
        Candidate(owner, distances.get(owner), similarities.get(owner), votes.get(owner, 0))
        for owner in sorted(set(distances) | set(similarities) | set(votes))
    ]


def _without_verification(candidate: Candidate) -> ImageDecision:
    """The decision on PDQ and the descriptor alone. Its score is above zero where either
    puts the owner above "no evidence" (within PDQ_NO_EVIDENCE bits, above the
    descriptor's calibrated floor)."""
    evidence = Evidence(candidate.pdq_distance, candidate.descriptor_similarity)
    return decide(evidence, decision_thresholds(), candidate.owner_id)


def _has_open_evidence(candidate: Candidate) -> bool:
    """Some evidence, but no match without verification: verification would decide it."""
    decided = _without_verification(candidate)
    return not decided.matched and decided.score > 0.0


def needs_local_features(signals: MediaSignals, searches: ImageSearches) -> bool:
    """Whether an image hashed without ORB features should get them before matching.

    Yes where there is no descriptor (local features are then the only evidence beyond
    PDQ). Otherwise only when some owner that PDQ does not match is left open with
    evidence (`_has_open_evidence`): triage verifies only candidates with evidence, so an
    image without such a candidate cannot be matched by verification.

    What triage gives up, for a bulk crawl: the local-feature index as a third source of
    candidates, i.e. copies that PDQ and the descriptor both put at the level of an
    unrelated photo, and the verification budget that index's votes steer. On the robust
    benchmark that is about half the screenshots and most pastes (benchmarks/RESULTS.md,
    "robust"), so it is not the default."""
    if signals.modality != "image" or NAME in signals.extra:
        return False
    if DESCRIPTOR_KIND not in signals.extra:
        return True
    bank = searches.bank
    if not len(bank.index("pdq")) and not len(bank.index(DESCRIPTOR_KIND)):
        return False  # no image owners at all
    distances = searches.pdq_distances
    similarities = searches.descriptor_similarities
    return any(
        _has_open_evidence(Candidate(owner, distances.get(owner), similarities.get(owner)))
        for owner in set(distances) | set(similarities)
    )


def _as_match(decision: ImageDecision) -> Decision:
    verification = decision.evidence.verification
    return Decision(
        owner_id=decision.owner_id,
        signal="+".join(decision.fired),  # e.g. "descriptor+verification"
        distance=round(1.0 - decision.score, 4),
        score=decision.score,
        explanation=decision.explanation,
        region=verification.corners if verification and verification.geometry_ok else (),
    )
