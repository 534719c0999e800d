"""Exact (path-dependent) TreeSHAP for an XGBoost booster, precomputed per leaf (pure numpy).

The same values as ``Booster.predict(pred_contribs=True, approx_contribs=False)`` (to float32
rounding: XGBoost accumulates in float32), several times faster for one row, which is what the
API scores. The method is "Fast TreeSHAP v2" (Yang, 2021):

For a leaf with value ``v`` whose path tests the unique features ``U`` (``d = |U|``), let ``z_j`` be
the product of the cover ratios (child cover / parent cover) of the path's splits on ``j`` and
``o_j`` be 1 when the row satisfies all of them (0 otherwise). TreeSHAP's conditional expectation
for a coalition ``S`` is ``v * prod_{j in S} o_j * prod_{j not in S} z_j``, so the leaf's Shapley
value for ``i`` is ``v * (o_i - z_i) * sum_S w(|S|, d) prod_{j not in S, j != i} z_j`` over the
coalitions ``S`` inside ``A`` without ``i``, where ``A`` is the set of features the row agrees
with (``o_j = 1``): the sum depends on the row only through ``A``, so it is precomputed for
every ``A`` (``2^d`` values per leaf and feature).
Paths are padded to the deepest one with null features (``o = z = 1``), which changes no Shapley
value (the null-player property). Scoring a row is then one comparison per path condition and a
gather, summed per feature over all leaves and trees.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_TABLE = 8_000_000  # precomputed entries (leaves x 2^depth x depth); above: use XGBoost's own


class TooLarge(ValueError):
    """The precomputed table would be too big for this booster; the message says how big."""


@dataclass
class TreeShap:
    n_features: int
    depth: int
    node_feature: np.ndarray  # per internal node of every tree
    node_threshold: np.ndarray  # float32, as XGBoost compares
    node_default_left: np.ndarray
    cond_node: np.ndarray  # per path condition: its node
    cond_left: np.ndarray  # the path goes left at this node
    cond_slot: np.ndarray  # per path condition: flat index into (leaves, depth)
    slot_feature: np.ndarray  # (leaves, depth): feature of each slot; n_features for padding
    zero: np.ndarray  # (leaves, depth)
    value: np.ndarray  # (leaves,)
    table_v: np.ndarray  # (leaves * 2^depth, depth): the weight sums times the leaf value
    powers: np.ndarray  # 2^slot, to turn agreeing slots into a set index

    @classmethod
    def of(cls, booster: Any, iteration_range: tuple[int, int] | None = None) -> TreeShap:
        model = json.loads(booster.save_raw("json"))
        gbm = model["learner"]["gradient_booster"]
        if gbm.get("name") not in (None, "gbtree"):
            raise ValueError(f"TreeSHAP: booster {gbm.get('name')!r} is not a gbtree")
        trees = gbm["model"]["trees"]
        if iteration_range is not None:
            per = int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", 1))
            trees = trees[iteration_range[0] * per : iteration_range[1] * per]
        n_features = int(model["learner"]["learner_model_param"]["num_feature"])
        paths: list[tuple[float, list[tuple[int, bool, float]]]] = []
        node_feature: list[int] = []
        node_threshold: list[float] = []
        node_default: list[bool] = []
        for tree in trees:
            if any(int(t) != 0 for t in tree["split_type"]):
                raise ValueError("TreeSHAP: categorical splits are not supported")
            left, right = tree["left_children"], tree["right_children"]
            cond, default = tree["split_conditions"], tree["default_left"]
            index, cover = tree["split_indices"], tree["sum_hessian"]
            stack: list[tuple[int, list[tuple[int, bool, float]]]] = [(0, [])]
            while stack:
                node, path = stack.pop()
                if left[node] == -1:
                    paths.append((float(cond[node]), path))
                    continue
                gid = len(node_feature)
                node_feature.append(int(index[node]))
                node_threshold.append(float(cond[node]))
                node_default.append(bool(default[node]))
                for child, goes_left in ((left[node], True), (right[node], False)):
                    ratio = cover[child] / cover[node] if cover[node] > 0 else 0.0
                    stack.append((child, [*path, (gid, goes_left, ratio)]))
        features_of = node_feature
        depth = max([len({features_of[c[0]] for c in p}) for _v, p in paths] + [1])
        table_size = len(paths) * (2**depth) * depth
        if table_size > MAX_TABLE:
            raise TooLarge(f"TreeSHAP table of {table_size:,} entries exceeds {MAX_TABLE:,}")
        n_leaves = len(paths)
        slot_feature = np.full((n_leaves, depth), n_features, dtype=np.int64)
        zero = np.ones((n_leaves, depth), dtype=np.float64)
        value = np.empty(n_leaves, dtype=np.float64)
        conds: list[tuple[int, int, int, bool]] = []  # leaf, slot, node, goes left
        for leaf, (v, path) in enumerate(paths):
            value[leaf] = v
            slots: dict[int, int] = {}
            for gid, goes_left, ratio in path:
                feature = features_of[gid]
                slot = slots.setdefault(feature, len(slots))
                slot_feature[leaf, slot] = feature
                zero[leaf, slot] *= ratio
                conds.append((leaf, slot, gid, goes_left))
        table = _table(zero, depth) * value[:, None, None]
        return cls(
            n_features=n_features,
            depth=depth,
            node_feature=np.asarray(node_feature, dtype=np.int64),
            node_threshold=np.asarray(node_threshold, dtype=np.float32),
            node_default_left=np.asarray(node_default, dtype=bool),
            cond_node=np.asarray([c[2] for c in conds], dtype=np.int64),
            cond_left=np.asarray([c[3] for c in conds], dtype=bool),
            cond_slot=np.asarray([c[0] * depth + c[1] for c in conds], dtype=np.int64),
            slot_feature=slot_feature,
            zero=zero,
            value=value,
            table_v=table.reshape(n_leaves * 2**depth, depth),
            powers=(2.0 ** np.arange(depth)).astype(np.float64),
        )

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows x features) SHAP values in margin units, without the bias column."""
        x32 = np.asarray(x, dtype=np.float32)
        out = np.zeros((x32.shape[0], self.n_features), dtype=np.float64)
        n_slots = self.zero.size
        flat_base = np.arange(self.value.shape[0]) * (2**self.depth)
        for r in range(x32.shape[0]):
            fv = x32[r, self.node_feature]  # each split decided once, shared by its leaves
            go_left = np.where(np.isnan(fv), self.node_default_left, fv < self.node_threshold)
            failed = go_left[self.cond_node] != self.cond_left
            # a slot agrees when none of its conditions failed (a feature may repeat on a path)
            misses = np.bincount(self.cond_slot, weights=failed, minlength=n_slots)
            one = (misses == 0).reshape(self.zero.shape).astype(np.float64)
            agree = (one @ self.powers).astype(np.int64)
            phi = (one - self.zero) * np.take(self.table_v, flat_base + agree, axis=0)
            sums = np.bincount(
                self.slot_feature.ravel(), weights=phi.ravel(), minlength=self.n_features + 1
            )
            out[r] = sums[: self.n_features]
        return out


def _table(zero: np.ndarray, depth: int) -> np.ndarray:
    """table[l, A, i] = sum of w(|S|, d) prod_{j not in S, j != i} z_j over S in A without i."""
    n_sets = 2**depth
    bits = (np.arange(n_sets)[:, None] >> np.arange(depth)) & 1  # (sets, depth)
    size = bits.sum(axis=1)
    weight = np.asarray(
        [
            math.factorial(s) * math.factorial(depth - s - 1) / math.factorial(depth)
            if s < depth
            else 0.0
            for s in size
        ],
        dtype=np.float64,
    )
    # prod over j not in S, j != i of z_j, for every leaf, S, i
    absent = 1 - bits  # (sets, depth)
    logs = np.where(zero > 0, np.log(np.where(zero > 0, zero, 1.0)), 0.0)
    zeros = (zero <= 0).astype(np.int64)
    # split zero covers out of the log-sum so products with a zero factor stay exactly zero
    log_all = logs @ absent.T  # (leaves, sets): sum_{j not in S} log z_j
    zero_all = zeros @ absent.T
    prod = np.empty((zero.shape[0], n_sets, depth), dtype=np.float64)
    for i in range(depth):
        in_absent = absent[:, i]  # is i counted in the "not in S" sum
        log_i = log_all - logs[:, [i]] * in_absent
        zero_i = zero_all - zeros[:, [i]] * in_absent
        prod[:, :, i] = np.where(zero_i > 0, 0.0, np.exp(log_i))
    # only S without i contributes to i's value
    without_i = absent.astype(np.float64)  # (sets, depth): 1 when i not in S
    contrib = prod * (weight[:, None] * without_i)[None, :, :]  # (leaves, S, i)
    subset = (np.arange(n_sets)[:, None] & np.arange(n_sets)[None, :]) == np.arange(n_sets)[None, :]
    # subset[A, S] = S is a subset of A
    return np.einsum("as,lsi->lai", subset.astype(np.float64), contrib)
