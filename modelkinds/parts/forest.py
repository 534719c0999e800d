"""A scikit-learn forest as flat arrays, walked together (pure numpy).

Gives the forest's probability for a preprocessed matrix without a Python loop over trees per
row; :mod:`modelkinds.rf` compiles with it (its reasons: :mod:`modelkinds.parts.treeshap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Forest:
    """All trees of a random forest as flat arrays, walked together."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    rate: np.ndarray  # positive-class share at every node
    depth: int
    n_trees: int

    @classmethod
    def of(cls, model: Any) -> Forest:
        classes = list(model.classes_)
        pos = classes.index(1) if 1 in classes else len(classes) - 1
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "t", "l", "r", "m", "v")}
        roots, start, depth = [], 0, 0
        for est in model.estimators_:
            tr = est.tree_
            n = tr.node_count
            roots.append(start)
            left, right = tr.children_left.astype(np.int64), tr.children_right.astype(np.int64)
            leaf = left < 0
            parts["l"].append(np.where(leaf, np.arange(n), left) + start)
            parts["r"].append(np.where(leaf, np.arange(n), right) + start)
            parts["f"].append(np.where(leaf, 0, tr.feature).astype(np.int64))
            parts["t"].append(tr.threshold.astype(np.float64))
            mgl = getattr(tr, "missing_go_to_left", None)
            parts["m"].append(
                np.zeros(n, dtype=bool) if mgl is None else np.asarray(mgl).astype(bool)
            )
            value = tr.value[:, 0, :]
            parts["v"].append(value[:, pos] / np.maximum(value.sum(axis=1), 1e-300))
            depth = max(depth, int(tr.max_depth))
            start += n
        feature, threshold, left_of, right_of, missing_left, rate = (
            np.concatenate(parts[k]) for k in ("f", "t", "l", "r", "m", "v")
        )
        return cls(
            np.asarray(roots, dtype=np.int64),
            feature,
            threshold,
            left_of,
            right_of,
            missing_left,
            rate,
            depth=depth,
            n_trees=len(model.estimators_),
        )

    def proba(self, x: np.ndarray) -> np.ndarray:
        """The positive probability per row, as ``predict_proba`` computes it."""
        x32 = x.astype(np.float32).astype(np.float64)  # sklearn trees compare in float32
        n = x.shape[0]
        node = np.broadcast_to(self.roots, (n, self.n_trees)).copy()
        rows = np.broadcast_to(np.arange(n)[:, None], node.shape)
        for _ in range(self.depth):
            value = x32[rows, self.feature[node]]
            below = value <= self.threshold[node]
            go_left = np.where(np.isnan(value), self.missing_left[node], below)
            node = np.where(go_left, self.left[node], self.right[node])
        # the forest adds its trees one by one, in order: so does cumsum (np.sum pairs them up)
        return np.cumsum(self.rate[node], axis=1)[:, -1] / self.n_trees
