"""Model quality and decision metrics for a probability of default (pure).

Conventions: ``y`` is 1 for a defaulter; ``p`` the predicted probability of default; an account
is rejected (predicted default) when ``p >= threshold``. Costs: a missed defaulter (false negative)
costs ``cost_fn``, a wrongly rejected good customer (false positive) ``cost_fp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

from riskstream.checks import require_positive


@dataclass(frozen=True)
class CostMatrix:
    cost_fn: float = 10.0
    cost_fp: float = 1.0

    def __post_init__(self) -> None:
        require_positive(cost_fn=self.cost_fn, cost_fp=self.cost_fp)


def _arrays(y: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y has {y_arr.size} values but p has {p_arr.size}")
    if y_arr.size == 0:
        raise ValueError("no observations to evaluate")
    return y_arr, p_arr


def ks_statistic(y: object, p: object) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score CDFs of bads and goods."""
    y_arr, p_arr = _arrays(y, p)
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    return float(np.max(tpr - fpr))


def gini(y: object, p: object) -> float:
    """Gini (accuracy ratio) = 2 * ROC-AUC - 1."""
    y_arr, p_arr = _arrays(y, p)
    return float(2.0 * roc_auc_score(y_arr, p_arr) - 1.0)


def expected_calibration_error(y: object, p: object, n_bins: int = 10) -> float:
    """ECE: mean |observed rate - mean predicted| over equal-width bins, weighted by bin size."""
    y_arr, p_arr = _arrays(y, p)
    bins = np.clip((p_arr * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(y_arr[mask].mean() - p_arr[mask].mean())
    return float(total / y_arr.size)


def confusion_at(y: object, p: object, threshold: float) -> dict[str, int]:
    """Confusion matrix when rejecting every account with ``p >= threshold``."""
    y_arr, p_arr = _arrays(y, p)
    pred = p_arr >= threshold
    bad = y_arr == 1
    return {
        "tp": int(np.sum(pred & bad)),
        "fp": int(np.sum(pred & ~bad)),
        "tn": int(np.sum(~pred & ~bad)),
        "fn": int(np.sum(~pred & bad)),
    }


def cost_curve(
    y: object, p: object, costs: CostMatrix, thresholds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cost per account at each threshold (candidates: every distinct score and 1+)."""
    y_arr, p_arr = _arrays(y, p)
    if thresholds is None:
        thresholds = np.append(np.unique(p_arr), np.nextafter(p_arr.max(), np.inf))
    order = np.argsort(p_arr)
    p_sorted, y_sorted = p_arr[order], y_arr[order]
    # Accounts with p < t are accepted: count bads and goods below each threshold.
    below = np.searchsorted(p_sorted, thresholds, side="left")
    bads_below = np.concatenate([[0], np.cumsum(y_sorted)])[below]
    goods_below = below - bads_below
    fn = bads_below
    fp = (y_arr.size - y_arr.sum()) - goods_below
    cost = (costs.cost_fn * fn + costs.cost_fp * fp) / y_arr.size
    return np.asarray(thresholds, dtype=float), cost


def cost_optimal_threshold(y: object, p: object, costs: CostMatrix) -> tuple[float, float]:
    """The threshold that minimises mean cost per account (the lowest one on ties), and the cost."""
    thresholds, cost = cost_curve(y, p, costs)
    best = int(np.argmin(cost))
    return float(thresholds[best]), float(cost[best])


def mean_cost(y: object, p: object, threshold: float, costs: CostMatrix) -> float:
    c = confusion_at(y, p, threshold)
    return (costs.cost_fn * c["fn"] + costs.cost_fp * c["fp"]) / (sum(c.values()))


def evaluate(
    y: object, p: object, threshold: float, costs: CostMatrix = CostMatrix()
) -> dict[str, float]:
    """Every metric logged per model: ranking, probability quality and the decision at
    ``threshold`` (chosen elsewhere, e.g. on validation data)."""
    y_arr, p_arr = _arrays(y, p)
    if len(np.unique(y_arr)) < 2:
        raise ValueError(f"need both classes to evaluate; all {y_arr.size} labels are {y_arr[0]}")
    auc = float(roc_auc_score(y_arr, p_arr))
    clipped = np.clip(p_arr, 1e-15, 1 - 1e-15)
    out: dict[str, float] = {
        "roc_auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y_arr, p_arr),
        "pr_auc": float(average_precision_score(y_arr, p_arr)),
        "brier": float(brier_score_loss(y_arr, p_arr)),
        "log_loss": float(log_loss(y_arr, clipped, labels=[0, 1])),
        "ece": expected_calibration_error(y_arr, p_arr),
        "threshold": float(threshold),
        "expected_cost": mean_cost(y_arr, p_arr, threshold, costs),
        "default_rate": float(y_arr.mean()),
    }
    for key, value in confusion_at(y_arr, p_arr, threshold).items():
        out[key] = float(value)
    return out
