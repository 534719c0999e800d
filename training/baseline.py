"""Training-time distributions for drift monitoring (PSI at scoring time), pure.

``baseline/baseline.json`` (docs/CONTRACTS.md): ``{"score": bins, "features": {name: bins}}`` where
``bins = {"edges": [...], "proportions": [...]}``: up to 11 ascending edges from the 0th, 10th,
..., 100th percentiles of the training data (equal edges merged), and the share of training rows
in each of the ``len(edges) - 1`` bins. Bins are closed on the left, the last also on the right;
values below the first or above the last edge belong to the first or last bin. Numeric features
only; missing values are left out of the proportions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def quantile_bins(values: object, n_bins: int = 10) -> dict[str, list[float]]:
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"edges": [], "proportions": []}
    edges = np.unique(np.quantile(arr, np.linspace(0, 1, n_bins + 1)))
    if edges.size == 1:
        return {"edges": [float(edges[0]), float(edges[0])], "proportions": [1.0]}
    return {"edges": [float(e) for e in edges], "proportions": bin_proportions(arr, edges)}


def bin_proportions(values: object, edges: object) -> list[float]:
    """Share of ``values`` in each bin defined by ``edges`` (the convention above)."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    cuts = np.asarray(edges, dtype=float)
    n_bins = len(cuts) - 1
    if arr.size == 0 or n_bins < 1:
        return [0.0] * max(n_bins, 0)
    index = np.clip(np.searchsorted(cuts, arr, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    return [float(c) for c in counts / arr.size]


def build_baseline(
    scores: object, features: pd.DataFrame, numeric_columns: list[str] | tuple[str, ...]
) -> dict[str, object]:
    return {
        "score": quantile_bins(scores),
        "features": {name: quantile_bins(features[name]) for name in numeric_columns},
    }
