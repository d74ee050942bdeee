"""The text match decision: which rule fires, when none does, and what it says."""

from __future__ import annotations

from ansim.detector.text_match import TextHit, TextMatchPolicy, decide, decide_all


def hit(entry_id: int, shared: int, jaccard: float, entry_c: float, query_c: float) -> TextHit:
    return TextHit(entry_id, shared, jaccard, entry_c, query_c)


def test_near_copy_wins_first() -> None:
    decision = decide(hit(1, 40, 0.8, 0.9, 0.85))
    assert decision is not None and decision.rule == "near_copy" and decision.score == 0.8
    assert "jaccard 0.80" in decision.explanation


def test_containment_rules_need_enough_shared_shingles() -> None:
    policy = TextMatchPolicy()
    embedded = hit(2, 30, 0.05, 0.95, 0.05)
    assert decide(embedded, policy).rule == "contains_reference"
    assert decide(hit(2, policy.min_shared - 1, 0.05, 1.0, 0.05), policy) is None
    excerpt = hit(3, 25, 0.45, 0.45, 0.97)
    assert decide(excerpt, policy).rule == "excerpt"


def test_weak_overlap_is_no_match() -> None:
    assert decide(hit(4, 12, 0.2, 0.3, 0.3)) is None


def test_decide_all_keeps_matches_best_first() -> None:
    decisions = decide_all(
        [hit(5, 12, 0.2, 0.3, 0.3), hit(6, 30, 0.6, 0.7, 0.7), hit(7, 50, 0.9, 1, 1)]
    )
    assert [d.entry_id for d in decisions] == [7, 6]


def test_stock_phrase_inside_a_long_reference_is_no_excerpt() -> None:
    # "subscribe to my channel" lies whole in a long post but covers little of it.
    assert decide(hit(8, 14, 0.1, 0.1, 1.0)) is None
