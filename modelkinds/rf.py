"""Random forest (scikit-learn), class-balanced per bootstrap sample.

Explained by exact (path-dependent) TreeSHAP in probability space
(:mod:`modelkinds.parts.treeshap`: cover = the nodes' weighted sample counts, a tree's leaf value
= its positive-class share, the forest's contributions = the mean over trees), so the expected
value plus the contributions is the forest's probability. The batch job and the compiled scorer
use the same computation. ``exact=False`` in the batch job switches to the path decomposition
(Saabas: the change in the node's default rate at each split credited to the split's feature),
much faster on a large backfill. The compiled scorer's probability walks flat arrays
(:mod:`modelkinds.parts.forest`).
"""

from __future__ import annotations

import weakref
from typing import Any

from modelkinds.base import TREESHAP, CompiledEstimator, FitOptions, ModelKind
from modelkinds.parts.preprocess import native_trees


def estimator(params: dict[str, Any], options: FitOptions) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    # Each tree sees a bootstrap sample of half the rows: on 20,000 Taiwan rows the search
    # took 66 s instead of 100 s with the same test AUC (0.782), less correlated trees.
    return RandomForestClassifier(
        class_weight="balanced_subsample",
        n_jobs=options.n_jobs,
        random_state=options.seed,
        **{"max_samples": 0.5, **params},
    )


def predict_serially(model: Any) -> None:
    """One thread to predict: parallel predict_proba sums the trees in whatever order the
    threads finish, so two identical forests could differ in the last bit."""
    model.set_params(n_jobs=1)


def contributions(model: Any, xt: Any, exact: bool) -> Any:
    import numpy as np

    if exact:
        return _treeshap(model).contributions(np.asarray(xt, dtype=np.float64))
    return saabas(model, xt)


_SHAP: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _treeshap(model: Any) -> Any:
    """The forest's TreeSHAP, built once per fitted forest (a batch asks chunk by chunk)."""
    from modelkinds.parts.treeshap import TreeShap

    shap = _SHAP.get(model)
    if shap is None:
        shap = _SHAP[model] = TreeShap.of_forest(model)
    return shap


def saabas(model: Any, xt: Any) -> Any:
    """The path decomposition: fast, not Shapley values (a backfill's ``exact=False``)."""
    import numpy as np
    from scipy import sparse

    indicator, node_ptr = model.decision_path(xt)
    n_features = int(model.n_features_in_)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    positive = list(model.classes_).index(1) if 1 in list(model.classes_) else -1
    n_trees = len(model.estimators_)
    for t, tree in enumerate(model.estimators_):
        tr = tree.tree_
        value = tr.value[:, 0, :]
        rate = value[:, positive] / np.maximum(value.sum(axis=1), 1e-12)
        parent = np.full(tr.node_count, -1, dtype=np.int64)
        left, right = tr.children_left, tr.children_right
        internal = np.where(left >= 0)[0]
        parent[left[internal]] = internal
        parent[right[internal]] = internal
        child = np.where(parent >= 0)[0]
        rows.append(child + node_ptr[t])
        cols.append(tr.feature[parent[child]].astype(np.int64))
        vals.append((rate[child] - rate[parent[child]]) / n_trees)
    edges = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(int(node_ptr[-1]), n_features),
    )
    return np.asarray((indicator @ edges).todense())


def compile_estimator(model: Any) -> CompiledEstimator:
    from modelkinds.parts.forest import Forest
    from modelkinds.parts.treeshap import CACHE_ROWS, TreeShap

    forest = Forest.of(model)
    shap = TreeShap.of_forest(model)
    shap.warm_up()  # compiled now, not on the first request

    def proba(x: Any) -> Any:
        # a few rows (the API): from the leaves TreeSHAP's agreement matrix reaches, which the
        # reasons then reuse; a batch: the trees walked together (same values, less memory)
        if len(x) <= CACHE_ROWS:
            return shap.forest_proba(x)
        return forest.proba(x)

    method = f"{KIND.reason_method}; {shap.how}"
    return CompiledEstimator(proba, proba, shap.contributions, method)


KIND = ModelKind(
    name="rf",
    label="Random Forest",
    order=20,
    estimator_classes=("RandomForestClassifier", "ExtraTreesClassifier"),
    # Bounded to serve within the promotion's latency budget (RISKSTREAM_SERVING_BUDGET_MS):
    # at most 100 trees of depth 8 and 32 leaves keep exact TreeSHAP in its per-leaf table
    # (3,200 leaves x 2^8 x 8 entries; modelkinds.parts.treeshap), a fraction of a ms per row.
    default_params={
        "n_estimators": 100,
        "max_depth": 8,
        "max_leaf_nodes": 32,
        "min_samples_leaf": 25,
        "max_features": 0.3,
    },
    library_defaults={},
    search_space={
        "n_estimators": [60, 100],
        "max_depth": [6, 8],
        "max_leaf_nodes": [24, 32],
        "min_samples_leaf": [5, 10, 25, 50, 100],
        "max_features": ["sqrt", 0.3, 0.5],
    },
    preprocess=native_trees,
    estimator=estimator,
    compile=compile_estimator,
    contributions=contributions,
    reason_method=TREESHAP,
    settle=predict_serially,
)
