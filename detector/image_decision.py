"""One decision for an (item, reference) image pair over three kinds of evidence.

- PDQ: the smallest Hamming distance over the item's 8 dihedral hashes; fires at
  <= 31 bits (Meta's recommended threshold, kept as is so PDQ's own matches never change).
- Descriptor: cosine similarity of the learned copy-detection descriptors; fires at or
  above a threshold calibrated on the benchmark.
- Verification: local features fitted with RANSAC; fires when the geometry is sane and
  the inliers reach a calibrated count.

Each kind maps to a score in [0, 1] that crosses 0.5 exactly at its threshold; the pair's
score is the highest of the three, and the pair is a match when that reaches 0.5. So the
score ranks pairs across kinds of evidence, and the explanation says which kinds fired.
The thresholds come from `calibrate`, run by the robust-image benchmark on images held
out of both training and the reported evaluation, for a target precision (0.999).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ansim.detector.local_verify import LocalFeatures, Verification, verify
from ansim.detector.pdq import DEFAULT_MATCH_DISTANCE

CALIBRATION_FILE = (
    Path(__file__).resolve().parent.parent / "models" / "weights" / "image_decision.json"
)
# PDQ distances past this carry no evidence (random pairs sit around 128 bits).
PDQ_NO_EVIDENCE = 90
# Candidates verified geometrically per query: the top local-feature candidate and the
# nearest descriptor neighbour (then PDQ's closest near miss, the seconds, ...). On the
# calibration pool (cq100 + kodak24), 2 and 4 gave the same recall on every transform at
# precision 1.0, and 2 halves verification CPU (see benchmarks/RESULTS.md, "robust"): an unrelated
# photo always brings descriptor neighbours, and each costs a ratio match.
VERIFICATION_BUDGET = 2


@dataclass(frozen=True)
class Thresholds:
    pdq_max_distance: int = DEFAULT_MATCH_DISTANCE
    # Conservative defaults, used until a calibration file exists.
    descriptor_min_similarity: float = 0.9
    # Where the descriptor score starts rising from 0 (about the typical non-copy).
    descriptor_floor: float = 0.3
    verification_min_inliers: int = 30
    target_precision: float = 0.999
    descriptor_model: str = ""
    calibrated_on: str = "defaults (not calibrated)"
    measured: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Thresholds:
        if not path.is_file():
            return cls()
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Evidence:
    """What is known about one pair; None where that signal is unavailable."""

    pdq_distance: int | None = None
    descriptor_similarity: float | None = None
    verification: Verification | None = None


@dataclass(frozen=True)
class Decision:
    owner_id: int
    matched: bool
    score: float
    fired: list[str]
    explanation: str
    evidence: Evidence

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "matched": self.matched,
            "score": round(self.score, 4),
            "fired": self.fired,
            "explanation": self.explanation,
        }
        if self.evidence.pdq_distance is not None:
            out["pdq_distance"] = self.evidence.pdq_distance
        if self.evidence.descriptor_similarity is not None:
            out["descriptor_similarity"] = round(self.evidence.descriptor_similarity, 4)
        if self.evidence.verification is not None:
            out["verification"] = self.evidence.verification.summary()
        return out


def _ramp(value: float, zero: float, half: float, one: float) -> float:
    """0 at `zero`, 0.5 at `half`, 1 at `one`, linear in between, clipped."""
    if value >= half:
        return min(1.0, 0.5 + 0.5 * (value - half) / max(one - half, 1e-9))
    return max(0.0, 0.5 * (value - zero) / max(half - zero, 1e-9))


def pdq_score(distance: int | None, thresholds: Thresholds) -> float:
    if distance is None:
        return 0.0
    # Closeness in bits: threshold -> 0.5, identical -> 1, PDQ_NO_EVIDENCE -> 0.
    return _ramp(-distance, -PDQ_NO_EVIDENCE, -thresholds.pdq_max_distance, 0)


def descriptor_score(similarity: float | None, thresholds: Thresholds) -> float:
    if similarity is None:
        return 0.0
    return _ramp(similarity, thresholds.descriptor_floor, thresholds.descriptor_min_similarity, 1.0)


def verification_score(verification: Verification | None, thresholds: Thresholds) -> float:
    if verification is None or not verification.geometry_ok:
        return 0.0
    needed = thresholds.verification_min_inliers
    return _ramp(verification.inliers, 0, needed, 5 * needed)


def decide(evidence: Evidence, thresholds: Thresholds, owner_id: int = 0) -> Decision:
    scores = {
        "pdq": pdq_score(evidence.pdq_distance, thresholds),
        "descriptor": descriptor_score(evidence.descriptor_similarity, thresholds),
        "verification": verification_score(evidence.verification, thresholds),
    }
    fired = [name for name, score in scores.items() if score >= 0.5]
    best = max(scores.values())
    return Decision(
        owner_id=owner_id,
        matched=best >= 0.5,
        score=best,
        fired=fired,
        explanation=explain(evidence, fired, thresholds),
        evidence=evidence,
    )


def explain(evidence: Evidence, fired: list[str], thresholds: Thresholds) -> str:
    parts = []
    if evidence.pdq_distance is not None:
        verdict = "fired" if "pdq" in fired else "did not fire"
        parts.append(
            f"PDQ {evidence.pdq_distance} bits (<= {thresholds.pdq_max_distance}: {verdict})"
        )
    if evidence.descriptor_similarity is not None:
        verdict = "fired" if "descriptor" in fired else "did not fire"
        parts.append(
            f"descriptor similarity {evidence.descriptor_similarity:.3f} "
            f"(>= {thresholds.descriptor_min_similarity:.3f}: {verdict})"
        )
    if evidence.verification is not None:
        verdict = "fired" if "verification" in fired else "did not fire"
        parts.append(
            f"local features: {evidence.verification.describe()} "
            f"(>= {thresholds.verification_min_inliers} inliers: {verdict})"
        )
    head = "match" if fired else "no match"
    return f"{head}: " + "; ".join(parts) if parts else f"{head}: no evidence"


# --- calibration ------------------------------------------------------------------------


def threshold_for_precision(
    positives: Sequence[float], negatives: Sequence[float], target: float
) -> float | None:
    """The lowest value v such that "value >= v" keeps precision >= target on these pairs;
    None when no value does."""
    labelled = sorted(
        [(value, True) for value in positives] + [(value, False) for value in negatives],
        key=lambda item: -item[0],
    )
    best: float | None = None
    true_hits = false_hits = 0
    index = 0
    while index < len(labelled):
        value = labelled[index][0]
        # Equal values pass or fail together.
        while index < len(labelled) and labelled[index][0] == value:
            true_hits += labelled[index][1]
            false_hits += not labelled[index][1]
            index += 1
        # Scan to the end: a later run of positives can lift precision back up.
        if true_hits / (true_hits + false_hits) >= target:
            best = value
    if best is None:
        return None
    # Halfway down to the next negative below: as safe on these pairs, and less tightly
    # fitted to the weakest positive seen here.
    below = [value for value in negatives if value < best]
    return (best + max(below)) / 2 if below else best


def calibrate(
    evidence: Sequence[Evidence],
    labels: Sequence[bool],
    target_precision: float,
    descriptor_model: str,
    calibrated_on: str,
) -> Thresholds:
    """Per-evidence thresholds at the target precision, then tightened until the union
    of the three rules (the actual decision) also holds the target on the same pairs."""
    defaults = Thresholds()
    similarities = [
        (e.descriptor_similarity, label)
        for e, label in zip(evidence, labels, strict=True)
        if e.descriptor_similarity is not None
    ]
    inliers = [
        (e.verification.inliers if e.verification and e.verification.geometry_ok else 0, label)
        for e, label in zip(evidence, labels, strict=True)
    ]
    descriptor_min = threshold_for_precision(
        [s for s, label in similarities if label],
        [s for s, label in similarities if not label],
        target_precision,
    )
    inliers_min = threshold_for_precision(
        [n for n, label in inliers if label and n > 0],
        [n for n, label in inliers if not label and n > 0],
        target_precision,
    )
    negatives = [s for s, label in similarities if not label]
    floor = sorted(negatives)[len(negatives) // 2] if negatives else defaults.descriptor_floor
    thresholds = Thresholds(
        descriptor_min_similarity=descriptor_min if descriptor_min is not None else 1.01,
        descriptor_floor=min(floor, (descriptor_min or 1.0) - 0.05),
        verification_min_inliers=math.ceil(inliers_min) if inliers_min is not None else 10**6,
        target_precision=target_precision,
        descriptor_model=descriptor_model,
        calibrated_on=calibrated_on,
    )
    for _ in range(200):
        precision = decision_precision(evidence, labels, thresholds)
        if precision >= target_precision:
            break
        thresholds = _tighten(evidence, labels, thresholds)
    return _with_measurements(evidence, labels, thresholds)


def decision_precision(
    evidence: Sequence[Evidence], labels: Sequence[bool], thresholds: Thresholds
) -> float:
    matched = [decide(e, thresholds).matched for e in evidence]
    true_hits = sum(m and label for m, label in zip(matched, labels, strict=True))
    false_hits = sum(m and not label for m, label in zip(matched, labels, strict=True))
    return true_hits / (true_hits + false_hits) if false_hits else 1.0


def _tighten(
    evidence: Sequence[Evidence], labels: Sequence[bool], thresholds: Thresholds
) -> Thresholds:
    """Raise whichever learned threshold let through the most false positives."""
    blame = {"descriptor": 0, "verification": 0}
    for e, label in zip(evidence, labels, strict=True):
        if not label:
            fired = decide(e, thresholds).fired
            for name in blame:
                blame[name] += name in fired
    if blame["descriptor"] >= blame["verification"]:
        return replace(
            thresholds, descriptor_min_similarity=thresholds.descriptor_min_similarity + 0.005
        )
    return replace(thresholds, verification_min_inliers=thresholds.verification_min_inliers + 1)


def _with_measurements(
    evidence: Sequence[Evidence], labels: Sequence[bool], thresholds: Thresholds
) -> Thresholds:
    decisions = [decide(e, thresholds) for e in evidence]
    true_hits = sum(d.matched and label for d, label in zip(decisions, labels, strict=True))
    false_hits = sum(d.matched and not label for d, label in zip(decisions, labels, strict=True))
    positives = sum(labels)
    measured = {
        "pairs": float(len(labels)),
        "positive_pairs": float(positives),
        "true_matches": float(true_hits),
        "false_matches": float(false_hits),
        "recall": true_hits / positives if positives else 0.0,
    }
    return replace(thresholds, measured=measured)


# --- deciding a query's candidates --------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A reference that some index put forward for a query, with what is already known."""

    owner_id: int
    pdq_distance: int | None = None
    descriptor_similarity: float | None = None
    # ORB descriptors of the query that found this reference in the local-feature index.
    local_votes: int = 0


def judge_candidates(
    candidates: Sequence[Candidate],
    query_features: LocalFeatures | None,
    reference_features: Callable[[set[int]], Mapping[int, LocalFeatures]],
    thresholds: Thresholds,
    max_verifications: int = VERIFICATION_BUDGET,
    query_is_reference: bool = False,
) -> list[Decision]:
    """Decide every candidate, verifying geometrically up to `max_verifications` of them.

    `query_is_reference` swaps the roles for a retro-hunt (a new reference against crawled
    items): verification always looks for the reference inside the copy, so the matched
    region and the explanation describe the copy either way.

    Each index gets its turn at the verification budget (most local-feature votes, then
    the nearest descriptor, then the closest PDQ near miss, then the second of each, ...):
    a strong candidate from one index cannot crowd out the one that only another index
    found. Candidates that PDQ already matches need no verification.

    `reference_features` is asked once, for the chosen owners' ORB features (a retro-hunt
    fetches its items again then, all at once); an owner it leaves out is not verified.
    """
    chosen = (
        _pick_for_verification(candidates, thresholds, max_verifications)
        if query_features is not None
        else set()
    )
    chosen_features = reference_features(chosen) if chosen else {}
    decisions = []
    for candidate in candidates:
        verification = None
        if candidate.owner_id in chosen:
            features = chosen_features.get(candidate.owner_id)
            if features is not None and query_is_reference:
                verification = verify(features, query_features)
            elif features is not None:
                verification = verify(query_features, features)
        evidence = Evidence(
            pdq_distance=candidate.pdq_distance,
            descriptor_similarity=candidate.descriptor_similarity,
            verification=verification,
        )
        decisions.append(decide(evidence, thresholds, candidate.owner_id))
    return decisions


def _pick_for_verification(
    candidates: Sequence[Candidate], thresholds: Thresholds, budget: int
) -> set[int]:
    open_ones = [
        c
        for c in candidates
        if c.pdq_distance is None or c.pdq_distance > thresholds.pdq_max_distance
    ]
    queues = [
        sorted((c for c in open_ones if c.local_votes > 0), key=lambda c: -c.local_votes),
        sorted(
            (c for c in open_ones if c.descriptor_similarity is not None),
            key=lambda c: -(c.descriptor_similarity or 0.0),
        ),
        sorted(
            (c for c in open_ones if c.pdq_distance is not None),
            key=lambda c: c.pdq_distance or 0,
        ),
    ]
    chosen: list[int] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if rank < len(queue) and queue[rank].owner_id not in chosen:
                chosen.append(queue[rank].owner_id)
                if len(chosen) == budget:
                    return set(chosen)
    return set(chosen)
