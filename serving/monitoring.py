"""Pure drift monitoring: the population stability index (PSI) against the training baseline.

    PSI = sum over bins of (actual_i - expected_i) * ln(actual_i / expected_i)

where ``expected_i`` is the share of the training population in bin ``i`` (from the champion's
``baseline/baseline.json``) and ``actual_i`` the share of today's population in the same bin.
Shares are floored at ``EPSILON`` so an empty bin does not give an infinite PSI. Rule of thumb:
< 0.1 stable, 0.1-0.25 some shift, > 0.25 a significant shift (flagged).

Bins come from the baseline's edges. With ``k`` proportions, ``k + 1`` edges are read as the bin
boundaries including the training minimum and maximum (values outside fall in the first or last
bin), and ``k - 1`` edges as the inner cut points. A value equal to a cut goes to the upper bin.
A categorical input's entry has ``categories`` instead of edges: each category is a bin, and a
value training never saw goes to the ``(other)`` bin (whose expected share may be 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from riskstream.names import BASELINE_OTHER_CATEGORY

PSI_ALERT = 0.25
EPSILON = 1e-4


def inner_edges(edges: Sequence[float], n_bins: int) -> np.ndarray:
    """The ``n_bins - 1`` cut points from a baseline's edges (see the module docstring)."""
    e = np.asarray(edges, dtype=np.float64)
    if len(e) == n_bins + 1:
        return e[1:-1]
    if len(e) == n_bins - 1:
        return e
    raise ValueError(
        f"baseline edges: {len(e)} edges do not fit {n_bins} proportions "
        f"(expected {n_bins + 1} or {n_bins - 1})"
    )


def bin_shares(values: Sequence[float] | np.ndarray, cuts: np.ndarray, n_bins: int) -> np.ndarray:
    """The share of non-missing ``values`` in each of ``n_bins`` bins split at ``cuts``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return np.zeros(n_bins)
    idx = np.searchsorted(cuts, v, side="right")
    counts = np.bincount(idx, minlength=n_bins)[:n_bins]
    return counts / len(v)


def psi(
    expected: Sequence[float] | np.ndarray,
    actual: Sequence[float] | np.ndarray,
    epsilon: float = EPSILON,
) -> float:
    """PSI between two share vectors of the same length (each summing to about 1)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"psi: expected has {e.shape[0]} bins but actual has {a.shape[0]}")
    e = np.maximum(e, epsilon)
    a = np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def category_shares(values: Sequence[Any] | np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """The share of non-missing ``values`` in each of ``categories``; the others count in the
    last one, which must be ``(other)``."""
    seen = [str(v) for v in values if v is not None and not (isinstance(v, float) and v != v)]
    if not seen:
        return np.zeros(len(categories))
    index = {c: i for i, c in enumerate(categories)}
    other = len(categories) - 1
    counts = np.bincount([index.get(v, other) for v in seen], minlength=len(categories))
    return counts / len(seen)


def psi_entry(values: Sequence[Any] | np.ndarray, baseline: Mapping[str, Any]) -> dict[str, Any]:
    """PSI of ``values`` against one baseline entry: ``{"edges": [...], "proportions": [...]}``
    for a numeric input, ``{"categories": [...], "proportions": [...]}`` for a categorical one."""
    expected = np.asarray(baseline["proportions"], dtype=np.float64)
    if "categories" in baseline:
        categories = [str(c) for c in baseline["categories"]]
        if BASELINE_OTHER_CATEGORY not in categories:
            categories.append(BASELINE_OTHER_CATEGORY)
            expected = np.append(expected, 0.0)
        actual = category_shares(values, categories)
        bins: dict[str, Any] = {"categories": categories}
    else:
        cuts = inner_edges(baseline["edges"], len(expected))
        actual = bin_shares(values, cuts, len(expected))
        bins = {"edges": [float(x) for x in baseline["edges"]]}
    value = psi(expected, actual)
    return {
        "psi": round(value, 6),
        "flag": value > PSI_ALERT,
        **bins,  # the bins, for the drift view
        "expected": [round(float(x), 6) for x in expected],
        "actual": [round(float(x), 6) for x in actual],
    }


def score_reference(baseline_score: Mapping[str, Any]) -> str:
    """Whether the baseline's ``score`` entry is a probability (``pd``) or a 300-850 ``score``."""
    edges = np.asarray(baseline_score.get("edges", []), dtype=np.float64)
    return "pd" if len(edges) and np.nanmin(edges) >= 0.0 and np.nanmax(edges) <= 1.0 else "score"


def monitoring_report(
    baseline: Mapping[str, Any] | None,
    pd_values: np.ndarray,
    scores: np.ndarray,
    features: Mapping[str, np.ndarray],
    feature_order: Sequence[str],
    top_n: int = 5,
) -> dict[str, Any]:
    """PSI of the score and of the ``top_n`` baseline features in ``feature_order``.

    ``feature_order`` ranks features by importance for this run (e.g. mean absolute
    contribution); features without a baseline entry are skipped, and so are non-numeric values
    against a numeric entry.
    """
    if not baseline:
        return {"baseline": "missing", "score": None, "features": {}, "flag": False}
    report: dict[str, Any] = {"baseline": "champion run baseline/baseline.json"}
    score_base = baseline.get("score")
    if score_base:
        ref = score_reference(score_base)
        entry = psi_entry(pd_values if ref == "pd" else scores, score_base)
        entry["on"] = ref
        report["score"] = entry
    else:
        report["score"] = None
    feats: dict[str, Any] = {}
    base_feats = baseline.get("features") or {}
    for name in feature_order:
        if len(feats) >= top_n:
            break
        if name not in base_feats or name not in features:
            continue
        values = features[name]
        categorical = "categories" in base_feats[name]
        if not categorical and not np.issubdtype(np.asarray(values).dtype, np.number):
            continue
        feats[name] = psi_entry(values, base_feats[name])
    report["features"] = feats
    report["flag"] = bool(
        (report["score"] or {}).get("flag") or any(f["flag"] for f in feats.values())
    )
    return report
