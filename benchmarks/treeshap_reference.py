"""A reference TreeSHAP for scikit-learn forests, independent of modelkinds.parts.treeshap:
Algorithm 2 of Lundberg, Erion & Lee (2018, "Consistent individualized feature attribution
for tree ensembles"), the recursive path-weight algorithm, written from the paper in plain
Python (slow: for checking a few rows, not for serving).

A forest's values are the mean over its trees, each tree's leaf value its positive-class share
(probability space), cover the nodes' weighted sample counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _extend(path: list[list[float]], pz: float, po: float, pi: int) -> list[list[float]]:
    path = [list(e) for e in path]
    n = len(path)
    path.append([pi, pz, po, 1.0 if n == 0 else 0.0])  # feature, zero, one, weight
    for i in range(n - 1, -1, -1):
        path[i + 1][3] += po * path[i][3] * (i + 1) / (n + 1)
        path[i][3] = pz * path[i][3] * (n - i) / (n + 1)
    return path


def _unwind(path: list[list[float]], i: int) -> list[list[float]]:
    path = [list(e) for e in path]
    n = len(path) - 1
    weight = path[n][3]
    one, zero = path[i][2], path[i][1]
    for j in range(n - 1, -1, -1):
        if one != 0:
            t = path[j][3]
            path[j][3] = weight * (n + 1) / ((j + 1) * one)
            weight = t - path[j][3] * zero * (n - j) / (n + 1)
        else:
            path[j][3] = path[j][3] * (n + 1) / (zero * (n - j))
    for j in range(i, n):
        path[j][0], path[j][1], path[j][2] = path[j + 1][0], path[j + 1][1], path[j + 1][2]
    return path[:n]


def tree_shap(tree: Any, row: np.ndarray, positive: int) -> np.ndarray:
    """One scikit-learn tree's SHAP values for one row (Algorithm 2)."""
    tr = tree.tree_
    value = tr.value[:, 0, :]
    leaf_value = value[:, positive] / value.sum(axis=1)
    cover = tr.weighted_n_node_samples
    phi = np.zeros(row.shape[0])

    def recurse(node: int, path: list[list[float]], pz: float, po: float, pi: int) -> None:
        path = _extend(path, pz, po, pi)
        left, right = tr.children_left[node], tr.children_right[node]
        if left < 0:
            for i in range(1, len(path)):
                w = sum(e[3] for e in _unwind(path, i))
                phi[int(path[i][0])] += w * (path[i][2] - path[i][1]) * leaf_value[node]
            return
        feature = int(tr.feature[node])
        v = np.float32(row[feature])
        goes_left = bool(tr.missing_go_to_left[node]) if np.isnan(v) else v <= tr.threshold[node]
        hot, cold = (left, right) if goes_left else (right, left)
        iz = io = 1.0
        k = next((k for k in range(1, len(path)) if int(path[k][0]) == feature), None)
        if k is not None:
            iz, io = path[k][1], path[k][2]
            path = _unwind(path, k)
        recurse(hot, path, iz * cover[hot] / cover[node], io, feature)
        recurse(cold, path, iz * cover[cold] / cover[node], 0.0, feature)

    recurse(0, [], 1.0, 1.0, -1)
    return phi


def forest_shap(forest: Any, rows: np.ndarray) -> np.ndarray:
    """(rows x features): the mean over trees of each tree's SHAP values, probability space."""
    positive = list(forest.classes_).index(1)
    out = np.zeros((rows.shape[0], rows.shape[1]))
    for r, row in enumerate(np.asarray(rows, dtype=np.float64)):
        for tree in forest.estimators_:
            out[r] += tree_shap(tree, row, positive)
    return out / len(forest.estimators_)
