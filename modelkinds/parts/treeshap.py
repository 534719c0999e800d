"""Exact (path-dependent) TreeSHAP for tree ensembles, evaluated per leaf (pure numpy).

Takes an XGBoost booster (:meth:`TreeShap.of`, the same values as ``Booster.predict(
pred_contribs=True, approx_contribs=False)`` to float32 rounding: XGBoost accumulates in
float32) or a scikit-learn forest (:meth:`TreeShap.of_forest`: cover = the nodes' weighted
sample counts, a leaf's value = its positive-class share over the number of trees, so the
contributions are the mean over trees in probability space and ``expected + contributions``
is the forest's probability). Several times faster than a per-tree recursion for one row,
which is what the API scores. The method is the leaf decomposition of "Fast TreeSHAP" (Yang,
2021):

For a leaf with value ``v`` whose path tests the unique features ``U`` (``d = |U|``), let ``z_j`` be
the product of the cover ratios (child cover / parent cover) of the path's splits on ``j`` and
``o_j`` be 1 when the row satisfies all of them (0 otherwise). TreeSHAP's conditional expectation
for a coalition ``S`` is ``v * prod_{j in S} o_j * prod_{j not in S} z_j`` (Lundberg et al.,
2020, Algorithm 1), so the leaf's Shapley value for ``i`` is

    v * (o_i - z_i) * sum_{S in U - i} w(|S|, d) prod_{j in S} o_j prod_{j not in S, j != i} z_j.

Two exact ways to evaluate the sum, chosen per ensemble:

* **table** (Fast TreeSHAP v2): the sum depends on the row only through the set ``A`` of
  features the row agrees with, so it is precomputed for every ``A`` (``2^d`` values per leaf
  and feature) and a row costs a gather. Used while the table holds at most ``MAX_TABLE``
  entries.
* **integral** (as Linear TreeSHAP, Yu et al., 2022): ``w(k, d)`` is the Beta integral
  ``int_0^1 t^k (1 - t)^(d-1-k) dt``, so the sum is ``int_0^1 prod_{j != i} (z_j + (o_j - z_j) t)
  dt``, a polynomial of degree ``d - 1`` that Gauss-Legendre quadrature with ``ceil(d / 2)`` nodes
  integrates exactly. Memory grows with the leaves only; used for large ensembles.

Paths are padded to the deepest one with null features (``o = z = 1``), which changes no Shapley
value (the null-player property).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelkinds.parts import treekernels

MAX_TABLE = 16_000_000  # precomputed entries (leaves x 2^depth x depth); above: the integral
MAX_TABLE_DEPTH = 8  # more distinct features on a path: the integral
CHUNK = 4_000_000  # rows x split nodes decided at a time (bounds a batch's memory)
CACHE_ROWS = 32  # the split decisions of at most this many rows is kept for the next call

TABLE = "precomputed per leaf"
INTEGRAL = "Gauss-Legendre per leaf"


Path = list[tuple[int, bool, float]]  # (node id, the path goes left there, cover ratio)


@dataclass
class _Nodes:
    """The internal nodes of every tree, and every leaf's path, collected tree by tree."""

    feature: list[int]
    threshold: list[float]
    default_left: list[bool]
    paths: list[tuple[float, Path]]
    outputs: list[float] = field(default_factory=list)  # each leaf's own output (forest)
    # the trees' shape, to walk them: per node its left and right child, and each tree's root,
    # as a node id, or -1 - leaf for a leaf
    children: list[int] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)

    @classmethod
    def empty(cls) -> _Nodes:
        return cls([], [], [], [])

    def add_tree(
        self,
        left: Any,
        right: Any,
        feature: Any,
        threshold: Any,
        default_left: Any,
        cover: Any,
        leaf_value: Any,
        output: Any = None,
    ) -> None:
        """One tree in flat arrays (a leaf has ``left == -1``), depth first from node 0;
        ``output``: what the tree itself answers at each node (kept per leaf when given)."""
        stack: list[tuple[int, Path, int]] = [(0, [], -1)]  # node, its path, where it hangs
        while stack:
            node, path, at = stack.pop()
            me = len(self.feature) if left[node] != -1 else -1 - len(self.paths)
            if at < 0:
                self.roots.append(me)
            else:
                self.children[at] = me
            if left[node] == -1:
                self.paths.append((float(leaf_value[node]), path))
                if output is not None:
                    self.outputs.append(float(output[node]))
                continue
            gid = len(self.feature)
            self.children += [0, 0]
            self.feature.append(int(feature[node]))
            self.threshold.append(float(threshold[node]))
            self.default_left.append(bool(default_left[node]))
            for child, goes_left in ((int(left[node]), True), (int(right[node]), False)):
                ratio = float(cover[child]) / float(cover[node]) if cover[node] > 0 else 0.0
                stack.append((child, [*path, (gid, goes_left, ratio)], 2 * gid + (not goes_left)))


@dataclass
class TreeShap:
    n_features: int
    depth: int
    inclusive: bool  # a split goes left when x <= threshold (scikit-learn); else x < threshold
    node_feature: np.ndarray  # per internal node of every tree
    node_threshold: np.ndarray  # float64 (an XGBoost float32 threshold, exactly)
    node_default_left: np.ndarray  # where a missing value goes
    node_children: np.ndarray  # (nodes, 2): left and right child, a node or -1 - leaf
    node_slot: np.ndarray  # the slot of the node's feature in the paths through it
    roots: np.ndarray  # (trees,): each tree's root, a node or -1 - leaf
    cond_start: np.ndarray  # (leaves + 1,): leaf l's path conditions are start[l]:start[l + 1]
    cond_node: np.ndarray  # per path condition: its node
    cond_left: np.ndarray  # the path goes left at this node
    cond_slot: np.ndarray  # per path condition: its slot (the feature's place in the leaf)
    slot_feature: np.ndarray  # (leaves, depth): feature of each slot; n_features for padding
    n_slots: np.ndarray  # (leaves,): the slots that test a feature (they come first)
    zero: np.ndarray  # (leaves, depth)
    value: np.ndarray  # (leaves,)
    expected: float  # the cover-weighted mean of the leaves: expected + contributions = output
    table_v: np.ndarray | None  # per leaf (2^d sets x d slots): each slot's Shapley value
    table_start: np.ndarray | None  # (leaves + 1,): where each leaf's part of table_v starts
    nodes_t: np.ndarray  # Gauss-Legendre nodes on [0, 1] (the integral)
    weights_t: np.ndarray  # and their weights
    output: np.ndarray | None = None  # (leaves,) a forest's leaf rates, tree by tree
    n_trees: int = 0
    _last: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _value32: np.ndarray | None = field(default=None, repr=False)

    @property
    def how(self) -> str:
        """How the sum is evaluated (both exact): the table or the integral."""
        return TABLE if self.table_v is not None else INTEGRAL

    @classmethod
    def of(
        cls,
        booster: Any,
        iteration_range: tuple[int, int] | None = None,
        max_table: int | None = None,
    ) -> TreeShap:
        """An XGBoost booster's trees (margin units, no bias column)."""
        model = json.loads(booster.save_raw("json"))
        gbm = model["learner"]["gradient_booster"]
        if gbm.get("name") not in (None, "gbtree"):
            raise ValueError(f"TreeSHAP: booster {gbm.get('name')!r} is not a gbtree")
        trees = gbm["model"]["trees"]
        if iteration_range is not None:
            per = int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", 1))
            trees = trees[iteration_range[0] * per : iteration_range[1] * per]
        n_features = int(model["learner"]["learner_model_param"]["num_feature"])
        nodes = _Nodes.empty()
        for tree in trees:
            if any(int(t) != 0 for t in tree["split_type"]):
                raise ValueError("TreeSHAP: categorical splits are not supported")
            cond = tree["split_conditions"]  # a leaf's value where it is a leaf
            nodes.add_tree(
                tree["left_children"],
                tree["right_children"],
                tree["split_indices"],
                np.asarray(cond, dtype=np.float32),
                tree["default_left"],
                tree["sum_hessian"],
                cond,
            )
        return cls._build(
            nodes, n_features, inclusive=False, max_table=max_table, n_trees=len(trees)
        )

    @classmethod
    def of_forest(cls, model: Any, max_table: int | None = None) -> TreeShap:
        """A fitted scikit-learn forest's trees, in probability space: each leaf's value is its
        positive-class share divided by the number of trees (the forest averages them)."""
        classes = list(model.classes_)
        pos = classes.index(1) if 1 in classes else len(classes) - 1
        n_trees = len(model.estimators_)
        nodes = _Nodes.empty()
        for est in model.estimators_:
            tr = est.tree_
            value = tr.value[:, 0, :]
            rate = value[:, pos] / np.maximum(value.sum(axis=1), 1e-300)
            mgl = getattr(tr, "missing_go_to_left", None)
            nodes.add_tree(
                tr.children_left,
                tr.children_right,
                tr.feature,
                tr.threshold,
                np.zeros(tr.node_count, dtype=bool) if mgl is None else np.asarray(mgl, bool),
                tr.weighted_n_node_samples,
                rate / n_trees,
                rate,
            )
        return cls._build(
            nodes, int(model.n_features_in_), inclusive=True, max_table=max_table, n_trees=n_trees
        )

    @classmethod
    def _build(
        cls,
        nodes: _Nodes,
        n_features: int,
        inclusive: bool,
        max_table: int | None,
        n_trees: int = 0,
    ) -> TreeShap:
        paths = nodes.paths
        features_of = nodes.feature
        depth = max([len({features_of[c[0]] for c in p}) for _v, p in paths] + [1])
        n_leaves = len(paths)
        slot_feature = np.full((n_leaves, depth), n_features, dtype=np.int64)
        zero = np.ones((n_leaves, depth), dtype=np.float64)
        value = np.empty(n_leaves, dtype=np.float64)
        conds: list[tuple[int, int, bool]] = []  # slot, node, goes left
        start = np.zeros(n_leaves + 1, dtype=np.int64)
        node_slot = np.zeros(len(features_of), dtype=np.int64)
        for leaf, (v, path) in enumerate(paths):
            value[leaf] = v
            start[leaf] = len(conds)
            slots: dict[int, int] = {}
            for gid, goes_left, ratio in path:
                feature = features_of[gid]
                slot = slots.setdefault(feature, len(slots))
                node_slot[gid] = slot  # the same for every leaf below: its path starts the same
                slot_feature[leaf, slot] = feature
                zero[leaf, slot] *= ratio
                conds.append((slot, gid, goes_left))
        start[n_leaves] = len(conds)
        n_slots = (slot_feature < n_features).sum(axis=1)
        limit = MAX_TABLE if max_table is None else max_table
        table_v = table_start = None
        if depth <= MAX_TABLE_DEPTH and n_leaves * (2**depth) * depth <= limit:
            table = _table(zero, depth) * value[:, None, None]
            table_v, table_start = _own_slots(table, n_slots, zero)
        x, w = np.polynomial.legendre.leggauss(max(1, math.ceil(depth / 2)))
        return cls(
            n_features=n_features,
            depth=depth,
            inclusive=inclusive,
            node_feature=np.asarray(nodes.feature, dtype=np.int32),
            node_threshold=np.asarray(nodes.threshold, dtype=np.float64),
            node_default_left=np.asarray(nodes.default_left, dtype=bool),
            node_children=np.asarray(nodes.children, dtype=np.int64).reshape(-1, 2),
            node_slot=node_slot,
            roots=np.asarray(nodes.roots, dtype=np.int64),
            cond_start=start,
            cond_node=np.asarray([c[1] for c in conds], dtype=np.int32),
            cond_left=np.asarray([c[2] for c in conds], dtype=bool),
            cond_slot=np.asarray([c[0] for c in conds], dtype=np.int32),
            slot_feature=slot_feature.astype(np.int32),
            n_slots=n_slots,
            zero=zero,
            value=value,
            expected=float(np.sum(value * zero.prod(axis=1))),
            table_v=table_v,
            table_start=table_start,
            nodes_t=(x + 1.0) / 2.0,
            weights_t=w / 2.0,
            output=np.asarray(nodes.outputs, dtype=np.float64) if nodes.outputs else None,
            n_trees=n_trees,
        )

    def _decide(self, x: np.ndarray) -> np.ndarray:
        """What the leaves are read from, per row: with the table, each leaf's code (bit ``s``
        set when the row satisfies the path's conditions on slot ``s``); with the integral
        (paths of any depth), where the row goes at every split. Each split is decided once."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        split = (self.node_feature, self.node_threshold, self.node_default_left, self.inclusive)
        if self.table_v is not None:
            return treekernels.leaf_codes(
                x, *split, self.node_slot, self.node_children, self.roots, len(self.value)
            )
        return treekernels.decide(x, *split)

    def _decide_once(self, x: np.ndarray) -> np.ndarray:
        """:meth:`_decide`, kept for the last small matrix: the API asks for the probability
        and then the reasons of the same rows, and both start from it."""
        last = self._last
        if last is not None and last[0] is x:
            return last[1]
        state = self._decide(x)
        if x.shape[0] <= CACHE_ROWS:
            self._last = (x, state)
        return state

    def forest_proba(self, x: np.ndarray) -> np.ndarray:
        """A forest's probability per row from the leaf each tree reaches (the leaf whose every
        split the row satisfies): its rates summed tree by tree in order, over the number of
        trees, as ``predict_proba`` and :meth:`modelkinds.parts.forest.Forest.proba` do."""
        assert self.output is not None and self.n_trees > 0
        state = self._decide_once(np.asarray(x))
        if self.table_v is not None:
            total = treekernels.code_sum64(state, self.n_slots, self.output)
        else:
            total = treekernels.walk_sum64(state, self.roots, self.node_children, self.output)
        return total / self.n_trees

    def margin32(self, x: np.ndarray, base: np.float32) -> np.ndarray:
        """A booster's margin per row as XGBoost sums it: in float32, ``base`` and then the
        leaf each tree reaches, tree by tree (the caller checks it against the booster)."""
        state = self._decide_once(np.asarray(x))
        if self.table_v is not None:
            return treekernels.code_sum32(state, self.n_slots, self._values32(), np.float32(base))
        return treekernels.walk_sum32(
            state, self.roots, self.node_children, self._values32(), np.float32(base)
        )

    def _values32(self) -> np.ndarray:
        if self._value32 is None:
            self._value32 = self.value.astype(np.float32)
        return self._value32

    def warm_up(self) -> None:
        """Compile (or load from numba's on-disk cache) every loop this ensemble runs, on a
        row of NaNs, so that the first request does not pay for it."""
        row = np.full((1, self.n_features), np.nan)
        self.contributions(row)
        self.margin32(row, np.float32(0))
        if self.output is not None:
            self.forest_proba(row)
        self._last = None

    def _sums(self, state: np.ndarray) -> np.ndarray:
        """(rows, features) Shapley values, by the table or the integral."""
        if self.table_v is not None:
            assert self.table_start is not None
            return treekernels.table_contributions(
                state,
                self.slot_feature,
                self.n_slots,
                self.table_v,
                self.table_start,
                self.n_features,
            )
        return treekernels.integral_contributions(
            state,
            self.cond_start,
            self.cond_node,
            self.cond_left,
            self.cond_slot,
            self.slot_feature,
            self.n_slots,
            self.zero,
            self.value,
            self.nodes_t,
            self.weights_t,
            self.n_features,
        )

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows x features) SHAP values in the ensemble's output units, without the bias
        (``expected``)."""
        x = np.asarray(x)
        step = max(1, CHUNK // max(len(self.node_feature), 1))
        if x.shape[0] <= step:
            return self._sums(self._decide_once(x))
        return np.vstack(
            [self._sums(self._decide(x[i : i + step])) for i in range(0, len(x), step)]
        )


def _own_slots(
    table: np.ndarray, own: np.ndarray, zero: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each leaf's part of the table over its own ``d`` slots, as the slot's Shapley value
    itself, ``(agrees - zero) * entry`` for every set the row can agree with: a leaf's padding
    slots always agree, so of its ``2^depth x depth`` entries a row can read ``2^d x d``, and
    then nothing else about the slot (the same values as multiplying per row, a fraction of
    the memory a row reads). Flat, leaf after leaf."""
    n_leaves, n_sets, _ = table.shape
    size = (2**own) * own
    start = np.zeros(n_leaves + 1, dtype=np.int64)
    np.cumsum(size, out=start[1:])
    flat = np.empty(int(start[-1]), dtype=np.float64)
    for d in (int(d) for d in np.unique(own)):
        leaves = np.flatnonzero(own == d)
        padding = (n_sets - 1) ^ ((1 << d) - 1)  # the bits of the padding slots: set
        sets = np.arange(2**d)
        agrees = ((sets[:, None] >> np.arange(d)) & 1).astype(np.float64)  # (sets, slots)
        entries = table[leaves][:, sets | padding, :d]
        phi = (agrees[None, :, :] - zero[leaves, None, :d]) * entries
        flat[start[leaves][:, None] + np.arange(2**d * d)[None, :]] = phi.reshape(len(leaves), -1)
    return flat, start


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
    table = prod * (weight[:, None] * without_i)[None, :, :]  # (leaves, S, i)
    # the sum over every S inside A, one bit at a time (a subset-sum transform: depth x 2^depth
    # additions per leaf and slot instead of 4^depth)
    for b in range(depth):
        has = np.nonzero(np.arange(n_sets) & (1 << b))[0]
        table[:, has] += table[:, has ^ (1 << b)]
    return table
