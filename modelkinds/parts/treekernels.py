"""Compiled loops for :mod:`modelkinds.parts.treeshap` (numba, compiled once and cached on disk).

One row through exact TreeSHAP is some 10,000-20,000 scalar steps (decide every split, find
which path conditions of each leaf the row satisfies, evaluate each leaf's Shapley sums, add
them into the features). As numpy operations on arrays that small, the calls cost more than
the work; these loops do the same steps with no temporary arrays. Every split compares the
row's value rounded to float32 (as scikit-learn and XGBoost do), and every sum adds its terms
in the order the numpy version did (``np.bincount`` over the leaves' slots, ``np.cumsum`` over
the trees), so the answers are the same values.

What a row's leaves are read from: with the table, each leaf's code (:func:`leaf_codes`); with
the integral, ``go`` (rows x split nodes, bool), where the row goes at every split: a leaf's
path condition ``c`` holds when ``go[node[c]] == left[c]``, and the conditions of leaf ``l``
are ``start[l]:start[l + 1]``. The module is imported when a model is
compiled or explained, not when :mod:`modelkinds` is.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def decide(
    x: np.ndarray,
    node_feature: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    inclusive: bool,
) -> np.ndarray:
    """(rows, nodes) whether the row goes left at each split (NaN: the node's default)."""
    n = x.shape[0]
    n_nodes = node_feature.shape[0]
    go = np.empty((n, n_nodes), dtype=np.bool_)
    for r in range(n):
        for k in range(n_nodes):
            value = np.float32(x[r, node_feature[k]])
            if np.isnan(value):
                go[r, k] = node_default_left[k]
            elif inclusive:
                go[r, k] = np.float64(value) <= node_threshold[k]
            else:
                go[r, k] = np.float64(value) < node_threshold[k]
    return go


@njit(cache=True, nogil=True)
def _leaf(go: np.ndarray, r: int, root: int, children: np.ndarray) -> int:
    """The leaf row ``r`` reaches from ``root`` (nodes ``>= 0``, a leaf ``l`` as ``-1 - l``)."""
    node = root
    while node >= 0:
        node = children[node, 0] if go[r, node] else children[node, 1]
    return -1 - node


@njit(cache=True, nogil=True)
def walk_sum64(
    go: np.ndarray, roots: np.ndarray, children: np.ndarray, output: np.ndarray
) -> np.ndarray:
    """Per row, ``output`` of the leaf each tree reaches, added tree by tree in float64 (a
    forest's rates, as ``np.cumsum`` adds them)."""
    n = go.shape[0]
    out = np.zeros(n, dtype=np.float64)
    for r in range(n):
        total = 0.0
        for t in range(roots.shape[0]):
            total += output[_leaf(go, r, roots[t], children)]
        out[r] = total
    return out


@njit(cache=True, nogil=True)
def walk_sum32(
    go: np.ndarray, roots: np.ndarray, children: np.ndarray, value32: np.ndarray, base: np.float32
) -> np.ndarray:
    """Per row, ``base`` plus the value of the leaf each tree reaches, added tree by tree in
    float32 (a booster's margin, as XGBoost adds its trees)."""
    n = go.shape[0]
    out = np.empty(n, dtype=np.float32)
    for r in range(n):
        total = base
        for t in range(roots.shape[0]):
            total = total + value32[_leaf(go, r, roots[t], children)]
        out[r] = total
    return out


@njit(cache=True, nogil=True)
def leaf_codes(
    x: np.ndarray,
    node_feature: np.ndarray,
    node_threshold: np.ndarray,
    node_default_left: np.ndarray,
    inclusive: bool,
    node_slot: np.ndarray,
    children: np.ndarray,
    roots: np.ndarray,
    n_leaves: int,
) -> np.ndarray:
    """(rows, leaves) each leaf's code: bit ``s`` set when the row satisfies every condition
    of the leaf's path on slot ``s`` (paths of at most 62 slots). Down each tree from its root:
    a split passes its code to the child the row goes to and clears its slot's bit in the
    code of the other (a node's slot is the same for every path through it). Nodes are
    numbered parents first."""
    n = x.shape[0]
    n_nodes = node_feature.shape[0]
    out = np.empty((n, n_leaves), dtype=np.int64)
    code = np.empty(n_nodes, dtype=np.int64)
    for r in range(n):
        for t in range(roots.shape[0]):
            if roots[t] >= 0:
                code[roots[t]] = -1  # every bit set
            else:
                out[r, -1 - roots[t]] = -1
        for k in range(n_nodes):
            value = np.float32(x[r, node_feature[k]])
            if np.isnan(value):
                left = node_default_left[k]
            elif inclusive:
                left = np.float64(value) <= node_threshold[k]
            else:
                left = np.float64(value) < node_threshold[k]
            here = code[k]
            cleared = here & ~(np.int64(1) << node_slot[k])
            to_left = here if left else cleared
            to_right = cleared if left else here
            child = children[k, 0]
            if child >= 0:
                code[child] = to_left
            else:
                out[r, -1 - child] = to_left
            child = children[k, 1]
            if child >= 0:
                code[child] = to_right
            else:
                out[r, -1 - child] = to_right
    return out


@njit(cache=True, nogil=True)
def code_sum64(codes: np.ndarray, n_slots: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per row, ``output`` summed over the leaves the row reaches (every slot agrees), in
    leaf order (tree by tree), in float64: a forest's rates, as ``np.cumsum`` adds them."""
    n, n_leaves = codes.shape
    out = np.zeros(n, dtype=np.float64)
    for r in range(n):
        total = 0.0
        for leaf in range(n_leaves):
            full = (np.int64(1) << n_slots[leaf]) - 1
            if codes[r, leaf] & full == full:
                total += output[leaf]
        out[r] = total
    return out


@njit(cache=True, nogil=True)
def code_sum32(
    codes: np.ndarray, n_slots: np.ndarray, value32: np.ndarray, base: np.float32
) -> np.ndarray:
    """Per row, ``base`` plus the values of the leaves the row reaches, added one by one in
    leaf order in float32: a booster's margin, as XGBoost adds its trees."""
    n, n_leaves = codes.shape
    out = np.empty(n, dtype=np.float32)
    for r in range(n):
        total = base
        for leaf in range(n_leaves):
            full = (np.int64(1) << n_slots[leaf]) - 1
            if codes[r, leaf] & full == full:
                total = total + value32[leaf]
        out[r] = total
    return out


@njit(cache=True, nogil=True)
def table_contributions(
    codes: np.ndarray,
    slot_feature: np.ndarray,
    n_slots: np.ndarray,
    table_v: np.ndarray,
    table_start: np.ndarray,
    n_features: int,
) -> np.ndarray:
    """(rows, features) Shapley values from the per-leaf table: the leaf's code (the set of
    its ``d`` slots the row agrees with) picks its row of ``d`` values, each added into its
    slot's feature, in leaf and slot order. ``slot_feature``: (leaves, depth), a leaf's
    ``n_slots`` slots that test a feature first."""
    n, n_leaves = codes.shape
    out = np.zeros((n, n_features), dtype=np.float64)
    for r in range(n):
        for leaf in range(n_leaves):
            d = n_slots[leaf]
            at = table_start[leaf] + (codes[r, leaf] & ((np.int64(1) << d) - 1)) * d
            for s in range(d):
                out[r, slot_feature[leaf, s]] += table_v[at + s]
    return out


@njit(cache=True, nogil=True)
def integral_contributions(
    go: np.ndarray,
    start: np.ndarray,
    cond_node: np.ndarray,
    cond_left: np.ndarray,
    cond_slot: np.ndarray,
    slot_feature: np.ndarray,
    n_slots: np.ndarray,
    zero: np.ndarray,
    value: np.ndarray,
    nodes_t: np.ndarray,
    weights_t: np.ndarray,
    n_features: int,
) -> np.ndarray:
    """(rows, features) Shapley values by the integral: for slot ``i`` of a leaf,
    ``value * (o_i - z_i) * sum_q w_q prod_{j != i} (z_j + (o_j - z_j) t_q)``, exact with
    Gauss-Legendre nodes for the paths' polynomial degree (any depth)."""
    n = go.shape[0]
    n_leaves, depth = zero.shape
    n_q = nodes_t.shape[0]
    out = np.zeros((n, n_features), dtype=np.float64)
    agree = np.empty(depth, dtype=np.float64)
    phi = np.empty(depth, dtype=np.float64)
    g = np.empty((n_q, depth), dtype=np.float64)
    before = np.empty((n_q, depth), dtype=np.float64)
    after = np.empty(n_q, dtype=np.float64)
    for r in range(n):
        for leaf in range(n_leaves):
            d = n_slots[leaf]
            for s in range(d):
                agree[s] = 1.0
            for c in range(start[leaf], start[leaf + 1]):
                if go[r, cond_node[c]] != cond_left[c]:
                    agree[cond_slot[c]] = 0.0
            for q in range(n_q):
                t = nodes_t[q]
                prod = 1.0
                for s in range(d):
                    before[q, s] = prod  # the product over the slots before s
                    g[q, s] = zero[leaf, s] + (agree[s] - zero[leaf, s]) * t
                    prod *= g[q, s]
                after[q] = 1.0  # the product over the slots after s, from the last one
            for s in range(d - 1, -1, -1):
                integral = 0.0
                for q in range(n_q):
                    integral += weights_t[q] * (before[q, s] * after[q])
                    after[q] *= g[q, s]
                phi[s] = (agree[s] - zero[leaf, s]) * integral * value[leaf]
            for s in range(d):
                out[r, slot_feature[leaf, s]] += phi[s]
    return out
