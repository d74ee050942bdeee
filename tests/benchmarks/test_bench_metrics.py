"""ISC21 metrics on small cases worked out by hand."""

from __future__ import annotations

import pytest
from ansim.benchmarks.metrics import (
    Prediction,
    micro_average_precision,
    precision_recall,
    recall_at_precision,
)

GROUND_TRUTH = {"q1": "r1", "q2": "r2", "q3": "r3"}


def test_muap_pools_queries_and_normalises_by_queries_with_a_match() -> None:
    predictions = [
        Prediction("q1", "r1", 0.9),  # right:  P 1/1, R 1/3
        Prediction("q2", "rX", 0.8),  # wrong:  P 1/2, R 1/3
        Prediction("q2", "r2", 0.7),  # right:  P 2/3, R 2/3
        Prediction("q4", "r1", 0.6),  # distractor query: P 2/4, R 2/3
    ]
    # q3 is never predicted: its recall is lost, not ignored.
    assert micro_average_precision(predictions, GROUND_TRUTH) == pytest.approx(
        1 / 3 * 1 + 1 / 3 * 2 / 3
    )


def test_muap_does_not_depend_on_prediction_order() -> None:
    predictions = [
        Prediction("q4", "r1", 0.6),
        Prediction("q2", "r2", 0.7),
        Prediction("q1", "r1", 0.9),
        Prediction("q2", "rX", 0.8),
    ]
    assert micro_average_precision(predictions, GROUND_TRUTH) == pytest.approx(5 / 9)


def test_ties_rank_wrong_predictions_first() -> None:
    ground_truth = {"q1": "r1"}
    predictions = [Prediction("q1", "r1", 0.5), Prediction("q9", "r1", 0.5)]
    # Pessimistic order (wrong, right): P = 0, 1/2 with recall gained at the second -> 0.5.
    assert micro_average_precision(predictions, ground_truth) == pytest.approx(0.5)


def test_perfect_and_partial_runs() -> None:
    perfect = [Prediction(q, r, 1.0) for q, r in GROUND_TRUTH.items()]
    assert micro_average_precision(perfect, GROUND_TRUTH) == pytest.approx(1.0)
    assert micro_average_precision(perfect[:2], GROUND_TRUTH) == pytest.approx(2 / 3)
    assert micro_average_precision([], GROUND_TRUTH) == 0.0


def test_duplicate_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        micro_average_precision(
            [Prediction("q1", "r1", 0.9), Prediction("q1", "r1", 0.8)], GROUND_TRUTH
        )


def test_precision_recall_at_the_operating_threshold() -> None:
    point = precision_recall(
        [Prediction("q1", "r1", 0.9), Prediction("q4", "r2", 0.8)], GROUND_TRUTH
    )
    assert point.precision == pytest.approx(0.5)
    assert point.recall == pytest.approx(1 / 3)
    assert point.min_score == pytest.approx(0.8)
    nothing = precision_recall([], GROUND_TRUTH)
    assert nothing.precision is None and nothing.recall == 0.0


def test_recall_at_target_precision() -> None:
    ground_truth = {"a": "ra", "b": "rb", "c": "rc", "d": "rd"}
    predictions = [
        Prediction("a", "ra", 0.9),  # P 1,   R .25
        Prediction("b", "rb", 0.8),  # P 1,   R .5
        Prediction("x", "ra", 0.7),  # P 2/3, R .5
        Prediction("c", "rc", 0.6),  # P 3/4, R .75
        Prediction("y", "rb", 0.5),  # P 3/5, R .75
    ]
    strict = recall_at_precision(predictions, ground_truth, 0.9)
    assert (strict.recall, strict.min_score, strict.precision) == (0.5, 0.8, 1.0)
    loose = recall_at_precision(predictions, ground_truth, 0.7)
    assert (loose.recall, loose.min_score, loose.precision) == (0.75, 0.6, 0.75)


def test_recall_at_precision_never_cuts_between_equal_scores() -> None:
    ground_truth = {"a": "ra", "b": "rb"}
    predictions = [
        Prediction("a", "ra", 0.9),
        Prediction("b", "rb", 0.5),
        Prediction("x", "ra", 0.5),
    ]
    # Threshold 0.5 keeps both 0.5 predictions (precision 2/3): only 0.9 reaches 0.9.
    point = recall_at_precision(predictions, ground_truth, 0.9)
    assert (point.recall, point.min_score) == (0.5, 0.9)
    unreachable = recall_at_precision([Prediction("x", "ra", 0.9)], ground_truth, 0.9)
    assert unreachable.recall == 0.0
    assert unreachable.min_score is None and unreachable.precision is None
