"""Training-time distributions for drift monitoring (PSI at scoring time), pure.

``baseline/baseline.json`` (docs/CONTRACTS.md): ``{"score": bins, "features": {name: bins}}`` where
``bins = {"edges": [...], "proportions": [...]}``: up to 11 ascending edges from the 0th, 10th,
..., 100th percentiles of the training data (equal edges merged), and the share of training rows
in each of the ``len(edges) - 1`` bins. Bins are closed on the left, the last also on the right;
values below the first or above the last edge belong to the first or last bin.

A categorical feature's entry is ``{"categories": [...], "proportions": [...]}``: the training
share of each category, most frequent first, at most ``MAX_CATEGORIES``; the rarer ones share the
last entry, ``OTHER``, which at scoring time also takes the categories training never saw. Missing
values are left out of the proportions of both kinds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskstream.names import BASELINE_OTHER_CATEGORY as OTHER

MAX_CATEGORIES = 20


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


def category_shares(values: object, max_categories: int = MAX_CATEGORIES) -> dict[str, list]:
    """The training share of each category (see the module docstring)."""
    counts = pd.Series(values, dtype="object").dropna().astype(str).value_counts()
    if counts.empty:
        return {"categories": [], "proportions": []}
    # most frequent first, ties by name: the same data always gives the same entry
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ordered[: max_categories - 1] if len(ordered) > max_categories else ordered
    total = float(counts.sum())
    categories = [str(k) for k, _ in kept]
    proportions = [float(v) / total for _, v in kept]
    rest = sum(v for _, v in ordered[len(kept) :])
    if rest:
        categories.append(OTHER)
        proportions.append(float(rest) / total)
    return {"categories": categories, "proportions": proportions}


def build_baseline(
    scores: object,
    features: pd.DataFrame,
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str] = (),
) -> dict[str, object]:
    entries: dict[str, object] = {name: quantile_bins(features[name]) for name in numeric_columns}
    entries.update({name: category_shares(features[name]) for name in categorical_columns})
    return {"score": quantile_bins(scores), "features": entries}
