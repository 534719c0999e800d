"""Exact TreeSHAP (modelkinds.parts.treeshap) against references: an independent brute-force
Shapley computation of TreeSHAP's definition for scikit-learn forests (Lundberg et al., 2020,
Algorithm 1's EXPVALUE over every coalition, on small trees), XGBoost's own ``pred_contribs``
for boosters; both evaluations (the precomputed table and the integral) agree with each."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

import modelkinds
from benchmarks.treeshap_reference import forest_shap
from modelkinds.parts.treeshap import INTEGRAL, TABLE, TreeShap

pytestmark = pytest.mark.unit

N_FEATURES = 6


def data(n: int, seed: int, gaps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[:, 4] = rng.integers(0, 3, n)  # a discrete column: ties at the thresholds
    logit = x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * x[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if gaps:
        x[rng.random(n) < 0.1, 1] = np.nan
    return x, y


def expvalue(tree: Any, row: np.ndarray, subset: frozenset[int], pos: int) -> float:
    """Algorithm 1 of Lundberg et al. (2020): E[f(x) | x_S], path-dependent, by recursion."""
    tr = tree.tree_
    value = tr.value[:, 0, :]
    rate = value[:, pos] / value.sum(axis=1)
    cover = tr.weighted_n_node_samples
    missing_left = tr.missing_go_to_left

    def g(node: int) -> float:
        left, right = tr.children_left[node], tr.children_right[node]
        if left < 0:
            return float(rate[node])
        feature = int(tr.feature[node])
        if feature in subset:
            v = np.float32(row[feature])
            goes_left = bool(missing_left[node]) if np.isnan(v) else v <= tr.threshold[node]
            return g(left if goes_left else right)
        return (cover[left] * g(left) + cover[right] * g(right)) / cover[node]

    return g(0)


def brute_force_shap(forest: Any, row: np.ndarray) -> tuple[np.ndarray, float]:
    """Shapley values of v(S) = mean over trees of EXPVALUE, by enumerating every coalition."""
    pos = list(forest.classes_).index(1)
    players = range(N_FEATURES)
    value: dict[frozenset[int], float] = {}
    for size in range(N_FEATURES + 1):
        for s in itertools.combinations(players, size):
            key = frozenset(s)
            value[key] = float(np.mean([expvalue(t, row, key, pos) for t in forest.estimators_]))
    phi = np.zeros(N_FEATURES)
    for i in players:
        others = [j for j in players if j != i]
        for size in range(N_FEATURES):
            w = math.factorial(size) * math.factorial(N_FEATURES - size - 1)
            w /= math.factorial(N_FEATURES)
            for s in itertools.combinations(others, size):
                key = frozenset(s)
                phi[i] += w * (value[key | {i}] - value[key])
    return phi, value[frozenset()]


@pytest.mark.parametrize("estimator", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_treeshap_equals_the_brute_force_definition(estimator: Any) -> None:
    x, y = data(300, 1)
    forest = estimator(
        n_estimators=4, max_depth=4, random_state=0, class_weight="balanced_subsample"
    ).fit(x, y)
    rows, _ = data(12, 2)
    rows[0, 4] = forest.estimators_[0].tree_.threshold[0]  # exactly on a threshold
    table = TreeShap.of_forest(forest)
    integral = TreeShap.of_forest(forest, max_table=0)
    assert (table.how, integral.how) == (TABLE, INTEGRAL)
    got_table, got_integral = table.contributions(rows), integral.contributions(rows)
    proba = forest.predict_proba(rows)[:, 1]
    for r, row in enumerate(rows):
        phi, base = brute_force_shap(forest, row)
        np.testing.assert_allclose(got_table[r], phi, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got_integral[r], phi, rtol=0, atol=1e-9)
        assert table.expected == pytest.approx(base, abs=1e-12)
    # the benchmark's reference (Algorithm 2, recursive) is the same definition
    np.testing.assert_allclose(forest_shap(forest, rows), got_table, rtol=0, atol=1e-9)
    # local accuracy: the expected value plus the contributions is the forest's probability
    np.testing.assert_allclose(table.expected + got_table.sum(axis=1), proba, rtol=0, atol=1e-9)


def test_a_deep_forest_takes_the_integral_and_keeps_local_accuracy() -> None:
    x, y = data(2000, 3)
    noise = np.random.default_rng(3).normal(size=(2050, 8))  # more features than the table takes
    x = np.hstack([x, noise[:2000]])
    forest = RandomForestClassifier(n_estimators=30, random_state=1, min_samples_leaf=2).fit(x, y)
    shap = TreeShap.of_forest(forest)
    assert shap.how == INTEGRAL and shap.depth > 8
    rows = np.hstack([data(50, 4)[0], noise[2000:]])
    got = shap.contributions(rows)
    np.testing.assert_allclose(
        shap.expected + got.sum(axis=1), forest.predict_proba(rows)[:, 1], rtol=0, atol=1e-9
    )
    one = shap.contributions(rows[:1])
    np.testing.assert_allclose(one[0], got[0], rtol=0, atol=1e-12)  # a row alone, as in a batch
    # against the recursive reference (Algorithm 2) on deep trees, where brute force cannot go
    np.testing.assert_allclose(forest_shap(forest, rows[:3]), got[:3], rtol=0, atol=1e-9)


@pytest.mark.parametrize("max_table", [None, 0], ids=["table", "integral"])
def test_xgboost_treeshap_equals_pred_contribs(max_table: int | None) -> None:
    import xgboost as xgb

    x, y = data(600, 5)
    model = xgb.XGBClassifier(n_estimators=40, max_depth=4, n_jobs=1, random_state=0).fit(x, y)
    shap = TreeShap.of(model.get_booster(), max_table=max_table)
    rows, _ = data(40, 6)
    reference = model.get_booster().predict(xgb.DMatrix(rows), pred_contribs=True)
    got = shap.contributions(rows)
    np.testing.assert_allclose(got, reference[:, :-1], rtol=1e-5, atol=1e-6)  # float32 sums


def test_the_forest_kind_batch_and_compiled_reasons_are_the_same_treeshap() -> None:
    x, y = data(400, 7)
    kind = modelkinds.get("rf")
    assert kind.reason_method == "TreeSHAP (path-dependent, exact)"
    forest = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(x, y)
    rows, _ = data(30, 8)
    batch = np.asarray(kind.contributions(forest, rows, True))
    compiled = kind.compile(forest)
    np.testing.assert_allclose(compiled.contribs(rows), batch, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        compiled.proba(rows), forest.predict_proba(rows)[:, 1], rtol=1e-9, atol=1e-12
    )
    assert compiled.reason_method.startswith(kind.reason_method)
    # the fast path decomposition (exact=False) is a different attribution with the same total
    saabas = np.asarray(kind.contributions(forest, rows, False))
    assert not np.allclose(saabas, batch, atol=1e-6)
    np.testing.assert_allclose(saabas.sum(axis=1), batch.sum(axis=1), rtol=0, atol=1e-9)


def _compiled_signatures() -> dict[str, int]:
    from modelkinds.parts import treekernels

    return {
        name: len(kernel.signatures)
        for name, kernel in vars(treekernels).items()
        if hasattr(kernel, "signatures")
    }


@pytest.mark.parametrize("max_table", [None, 0], ids=["table", "integral"])
def test_the_loops_are_compiled_at_load_and_the_probability_is_the_forests(
    max_table: int | None,
) -> None:
    """warm_up compiles every loop a request runs (a request compiles nothing more), and the
    probability from the leaves the row reaches is the trees' own, summed in their order."""
    from modelkinds.parts.forest import Forest

    x, y = data(400, 9)
    forest = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(x, y)
    shap = TreeShap.of_forest(forest, max_table=max_table)
    shap.warm_up()
    ready = _compiled_signatures()
    rows, _ = data(21, 10)
    few = [shap.forest_proba(rows[i : i + 3]) for i in range(0, len(rows), 3)]
    one = [shap.contributions(rows[i : i + 3]) for i in range(0, len(rows), 3)]
    assert _compiled_signatures() == ready
    assert np.array_equal(np.concatenate(few), Forest.of(forest).proba(rows))
    np.testing.assert_allclose(np.vstack(one), forest_shap(forest, rows), rtol=0, atol=1e-9)


def test_boosters_whose_trees_are_single_leaves_explain_nothing() -> None:
    import xgboost as xgb

    x, y = data(300, 11)
    model = xgb.XGBClassifier(n_estimators=4, max_depth=3, min_child_weight=1e9, n_jobs=1)
    booster = model.fit(x, y).get_booster()
    rows, _ = data(5, 12)
    reference = booster.predict(xgb.DMatrix(rows), pred_contribs=True)
    assert np.array_equal(reference[:, :-1], np.zeros_like(rows))
    for max_table in (None, 0):
        shap = TreeShap.of(booster, max_table=max_table)
        assert np.array_equal(shap.contributions(rows), np.zeros_like(rows))
        # every row reaches each tree's only leaf: the sum of the leaves, the expected value
        np.testing.assert_allclose(shap.margin32(rows, np.float32(0.0)), shap.expected, atol=1e-6)
