"""The text match decision: which verified overlaps count as a repost, and why.

Three ways a query can repost a reference, each measured exactly on the hashed shingle
sets by the index (a `TextHit`, defined here: the index builds them, the decision reads
them):

- `near_copy`: the two texts are mostly the same (Jaccard): edits, typos, reordering.
- `contains_reference`: most of the reference is inside the query (entry containment): a
  reported post pasted into a longer page or thread.
- `excerpt`: most of the query is inside the reference (query containment): a repost of
  part of the reference (truncated to half).

Containment alone is easy to reach for a short text, so the two containment rules also
need a minimum number of shared shingles, and an excerpt must cover a fair share of the
reference: a stock phrase ("subscribe to my channel", "정말 재밌어요") lies whole inside
many longer posts without being a repost of any of them.

Defaults were chosen with `ansim bench text --calibrate` (references from chatbot_data and
sms_spam_collection only; nsmc, question_pair and youtube_spam_collection held out). The
excerpt-share and contained-shared rules were added after reading false matches of a test
run (stock YouTube phrases); their values come from the calibration sweep.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextHit:
    """The exact overlap of a query text with one indexed text (hashed shingle sets)."""

    entry_id: int
    shared: int  # distinct shingles in common
    jaccard: float
    entry_containment: float  # share of the stored text's shingles found in the query
    query_containment: float  # share of the query's shingles found in the stored text

    @property
    def similarity(self) -> float:
        return max(self.jaccard, self.entry_containment, self.query_containment)


@dataclass(frozen=True)
class TextMatchPolicy:
    min_jaccard: float = 0.6
    min_entry_containment: float = 0.9
    min_query_containment: float = 0.9
    min_shared: int = 10  # for an excerpt
    min_contained_shared: int = 20  # for a reference inside a longer text
    min_excerpt_share: float = 0.3  # of the reference's shingles an excerpt must hold

    @property
    def search_floor(self) -> float:
        """The smallest similarity any rule accepts: what to ask the index for."""
        return min(self.min_jaccard, self.min_entry_containment, self.min_query_containment)


@dataclass(frozen=True)
class TextDecision:
    entry_id: int
    rule: str  # near_copy | contains_reference | excerpt
    score: float
    explanation: str


def decide(hit: TextHit, policy: TextMatchPolicy = TextMatchPolicy()) -> TextDecision | None:
    """The decision for one verified hit, or None when it is not a match."""
    facts = (
        f"{hit.shared} shingles shared; jaccard {hit.jaccard:.2f}, "
        f"{hit.entry_containment:.0%} of the reference in the text, "
        f"{hit.query_containment:.0%} of the text in the reference"
    )
    if hit.jaccard >= policy.min_jaccard:
        return TextDecision(
            hit.entry_id,
            "near_copy",
            hit.jaccard,
            f"near copy of the reference after normalization ({facts})",
        )
    if (
        hit.entry_containment >= policy.min_entry_containment
        and hit.shared >= policy.min_contained_shared
    ):
        return TextDecision(
            hit.entry_id,
            "contains_reference",
            hit.entry_containment,
            f"the reference text appears inside this text ({facts})",
        )
    if (
        hit.query_containment >= policy.min_query_containment
        and hit.entry_containment >= policy.min_excerpt_share
        and hit.shared >= policy.min_shared
    ):
        return TextDecision(
            hit.entry_id,
            "excerpt",
            hit.query_containment,
            f"this text is an excerpt of the reference ({facts})",
        )
    return None


def decide_all(
    hits: list[TextHit], policy: TextMatchPolicy = TextMatchPolicy()
) -> list[TextDecision]:
    """The matches among one query's hits, best first."""
    decisions = [d for d in (decide(hit, policy) for hit in hits) if d is not None]
    return sorted(decisions, key=lambda d: (-d.score, d.entry_id))
