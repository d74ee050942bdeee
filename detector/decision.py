"""Match decisions: from index hits to "this item is a copy of that reference", with why.

Thresholds live here, in one place, with Meta's recommended PDQ defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ansim.detector.audio_match import AudioAlignment, AudioMatchRules
from ansim.detector.pdq import DEFAULT_MATCH_DISTANCE, DEFAULT_MIN_QUALITY

# How the copy differs from the reference when the query's dihedral variant v matched:
# pdqhash.compute_dihedral's order is original, rot90, rot180, rot270, flip x, flip y,
# transpose, anti-transpose (checked against Meta's dih/ set), and the copy is the
# reference under the inverse of v (rotations invert, mirrors are their own inverse).
COPY_TRANSFORM_FOR_VARIANT = (
    "unrotated",
    "rotated 270 degrees",
    "rotated 180 degrees",
    "rotated 90 degrees",
    "flipped upside down",
    "mirrored left-right",
    "mirrored on the diagonal",
    "mirrored on the anti-diagonal",
)


@dataclass(frozen=True)
class MatchRules:
    pdq_max_distance: int = DEFAULT_MATCH_DISTANCE
    pdq_min_quality: int = DEFAULT_MIN_QUALITY
    audio: AudioMatchRules = AudioMatchRules()
    # Bulk triage of images (the crawler): only references that PDQ or the descriptor
    # put above "no evidence" are verified with local features, and the local-feature
    # index proposes no candidates (signal_types.orb.needs_local_features).
    image_triage: bool = False


@dataclass(frozen=True)
class PdqEvidence:
    """A stored PDQ hash that a query hash (one of its dihedral variants) came close to."""

    entry_id: int
    owner_id: int
    distance: int
    variant: int


@dataclass(frozen=True)
class Decision:
    owner_id: int
    signal: str
    distance: float
    score: float
    explanation: str
    # Where the reference sits in the item, for local-feature matches: four corners as
    # shares of the item's width and height (`Verification.corners`); () otherwise.
    region: tuple[tuple[float, float], ...] = ()


def best_pdq_evidence(
    hits_per_variant: list[list[tuple[int, int]]],
    owner_of_entry: Mapping[int, int],
) -> dict[int, PdqEvidence]:
    """Keep, per owner (reference), the closest hit over all query variants.

    `hits_per_variant[v]` lists (entry_id, distance) for dihedral variant v; entries with no
    known owner (withdrawn since the index was written) are dropped.
    """
    best: dict[int, PdqEvidence] = {}
    for variant, hits in enumerate(hits_per_variant):
        for entry_id, distance in hits:
            owner_id = owner_of_entry.get(entry_id)
            if owner_id is None:
                continue
            current = best.get(owner_id)
            if current is None or (distance, variant) < (current.distance, current.variant):
                best[owner_id] = PdqEvidence(entry_id, owner_id, distance, variant)
    return best


def pdq_image_decision(evidence: PdqEvidence, rules: MatchRules) -> Decision | None:
    if evidence.distance > rules.pdq_max_distance:
        return None
    how = COPY_TRANSFORM_FOR_VARIANT[evidence.variant]
    return Decision(
        owner_id=evidence.owner_id,
        signal="pdq",
        distance=float(evidence.distance),
        score=1.0 - evidence.distance / 256.0,
        explanation=f"PDQ distance {evidence.distance}/256 (threshold {rules.pdq_max_distance}), "
        f"copy {how}",
    )


def exact_decision(owner_id: int, kind: str) -> Decision:
    return Decision(
        owner_id=owner_id,
        signal=kind,
        distance=0.0,
        score=1.0,
        explanation=f"identical file ({kind.upper()} equal)",
    )


def audio_decision(alignment: AudioAlignment, owner_id: int) -> Decision:
    """A verified audio alignment (it passed `AudioMatchRules`) as a decision."""
    return Decision(
        owner_id=owner_id,
        signal="audio",
        distance=1.0 - alignment.peak_share,
        score=alignment.peak_share,
        explanation=alignment.explanation(),
    )
