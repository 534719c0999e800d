"""Metric functions against values computed by hand on a six-account example."""

from __future__ import annotations

import numpy as np
import pytest

from training.baseline import bin_proportions, build_baseline, category_shares, quantile_bins
from training.metrics import (
    CostMatrix,
    confusion_at,
    cost_optimal_threshold,
    evaluate,
    expected_calibration_error,
    gini,
    ks_statistic,
)

pytestmark = pytest.mark.unit

# Sorted by score: good, good, bad, good, bad, bad.
Y = np.array([0, 0, 1, 0, 1, 1])
P = np.array([0.1, 0.3, 0.35, 0.4, 0.8, 0.9])


def test_ks_is_the_largest_gap_between_bad_and_good_rates() -> None:
    # Rejecting p >= 0.8 catches 2/3 of bads and no goods; p >= 0.35 all bads, 1/3 goods.
    assert ks_statistic(Y, P) == pytest.approx(2 / 3)


def test_gini_from_pairwise_ordering() -> None:
    # 8 of 9 (bad, good) pairs are ordered correctly: AUC 8/9, Gini 2 * 8/9 - 1.
    assert gini(Y, P) == pytest.approx(7 / 9)


@pytest.mark.parametrize(
    ("cost_fn", "cost_fp", "threshold", "cost"),
    [
        (10.0, 1.0, 0.35, 1 / 6),  # reject 0.35+: one wrongly rejected good (0.4)
        (1.0, 10.0, 0.8, 1 / 6),  # rejecting goods is dear: accept 0.35, one missed bad
        (1.0, 1.0, 0.35, 1 / 6),  # tie between 0.35 and 0.8: the lower threshold wins
    ],
)
def test_cost_optimal_threshold(cost_fn: float, cost_fp: float, threshold: float, cost: float):
    found, found_cost = cost_optimal_threshold(Y, P, CostMatrix(cost_fn, cost_fp))
    assert found == pytest.approx(threshold)
    assert found_cost == pytest.approx(cost)


def test_confusion_at_threshold() -> None:
    assert confusion_at(Y, P, 0.35) == {"tp": 3, "fp": 1, "tn": 2, "fn": 0}
    assert confusion_at(Y, P, 0.85) == {"tp": 1, "fp": 0, "tn": 3, "fn": 2}


def test_expected_calibration_error_by_hand() -> None:
    # bins of width 0.1: |0-.1| + 2*|.5-.325| + |0-.4| + |1-.8| + |1-.9| = 1.15, over 6 accounts
    assert expected_calibration_error(Y, P) == pytest.approx(1.15 / 6)


def test_evaluate_reports_everything_at_the_given_threshold() -> None:
    out = evaluate(Y, P, 0.35, CostMatrix(10, 1))
    assert out["roc_auc"] == pytest.approx(8 / 9)
    assert out["ks"] == pytest.approx(2 / 3)
    assert out["expected_cost"] == pytest.approx(1 / 6)
    assert (out["tp"], out["fp"], out["tn"], out["fn"]) == (3, 1, 2, 0)
    assert out["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    assert set(out) >= {"pr_auc", "log_loss", "gini", "ece", "threshold"}


def test_evaluate_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        evaluate([1, 1, 1], [0.2, 0.5, 0.9], 0.5)


def test_cost_matrix_rejects_non_positive_costs() -> None:
    with pytest.raises(ValueError, match="cost_fn=0"):
        CostMatrix(0, 1)


def test_quantile_bins_and_proportions() -> None:
    values = np.arange(100, dtype=float)
    bins = quantile_bins(values)
    assert len(bins["edges"]) == 11
    assert bins["edges"][0] == 0.0 and bins["edges"][-1] == 99.0
    assert bins["proportions"] == pytest.approx([0.1] * 10)
    # Out-of-range values fall into the end bins.
    assert bin_proportions([-5, 200], bins["edges"]) == pytest.approx([0.5] + [0.0] * 8 + [0.5])


def test_baseline_for_a_constant_feature() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [3.0] * 5, "y": [1.0, 2.0, 3.0, 4.0, np.nan]})
    out = build_baseline([0.1, 0.2, 0.3, 0.4, 0.5], frame, ["x", "y"])
    assert out["features"]["x"] == {"edges": [3.0, 3.0], "proportions": [1.0]}
    assert sum(out["features"]["y"]["proportions"]) == pytest.approx(1.0)
    assert sum(out["score"]["proportions"]) == pytest.approx(1.0)


def test_category_shares_keep_the_frequent_and_pool_the_rest() -> None:
    values = ["b"] * 5 + ["a"] * 5 + ["c"] * 2 + ["d"] + [None]
    assert category_shares(values) == {
        "categories": ["a", "b", "c", "d"],
        "proportions": pytest.approx([5 / 13, 5 / 13, 2 / 13, 1 / 13]),
    }
    pooled = category_shares(values, max_categories=3)
    assert pooled["categories"] == ["a", "b", "(other)"]
    assert pooled["proportions"] == pytest.approx([5 / 13, 5 / 13, 3 / 13])
    assert category_shares([None, None]) == {"categories": [], "proportions": []}


def test_baseline_holds_categorical_inputs() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "seg": ["u", "u", "v", None]})
    out = build_baseline([0.1, 0.2, 0.3, 0.4], frame, ["x"], ["seg"])
    assert out["features"]["seg"] == {"categories": ["u", "v"], "proportions": [2 / 3, 1 / 3]}
