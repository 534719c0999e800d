"""XGBoost (histogram trees), imbalance weighted, early-stopped on the inner validation rows.

Explained by exact (path-dependent) TreeSHAP in log-odds: the booster's own ``pred_contribs``
in the batch job (``exact=False`` switches to its approximate path decomposition, about 30x
faster on a large backfill); the compiled scorer computes the same values per leaf
(:mod:`modelkinds.parts.treeshap`), and falls back to ``pred_contribs`` for a booster it cannot
read (categorical splits, a missing value other than NaN). Either way the contributions plus the
bias add up to the margin.

Past one machine (a large table and a Spark cluster; training.spark_fit), the chosen
configuration is fitted with ``xgboost.spark`` and its booster loaded into the same
``XGBClassifier``: everything above applies to it unchanged.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from modelkinds.base import TREESHAP, CompiledEstimator, FitOptions, ModelKind, NotCompilable
from modelkinds.parts.preprocess import native_trees

logger = logging.getLogger(__name__)


def estimator(params: dict[str, Any], options: FitOptions) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(
        tree_method="hist",
        scale_pos_weight=options.pos_weight,
        n_jobs=options.threads,
        random_state=options.seed,
        eval_metric="auc",
        **params,
    )


def fit_trial(
    model: Any, x_fit: Any, y_fit: Any, x_val: Any, y_val: Any, options: FitOptions
) -> dict[str, Any]:
    """Early stopping on the validation rows fixes ``n_estimators`` for the refit."""
    model.set_params(early_stopping_rounds=options.early_stopping_rounds)
    model.fit(x_fit, y_fit, eval_set=[(x_val, y_val)], verbose=False)
    return {"n_estimators": int(model.best_iteration) + 1}


# What xgboost.spark refuses or sets itself: threads come from ``spark.task.cpus``, the objective
# from the estimator (binary:logistic), and the refit does not stop early.
_NOT_ON_SPARK = frozenset(
    {"n_jobs", "nthread", "enable_categorical", "objective", "early_stopping_rounds", "callbacks"}
)


def spark_fit(model: Any, frame: Any, features: Sequence[str], label: str, workers: int) -> Any:
    """Fit ``model``'s configuration with ``xgboost.spark`` on ``workers`` barrier tasks (at most
    the cluster's free task slots, or the stage waits for slots forever), then load the booster
    into ``model`` itself: an ``XGBClassifier`` that predicts, compiles and explains exactly as
    one fitted on this machine, with the booster the cluster built."""
    from xgboost.spark import SparkXGBClassifier

    objective = str(model.get_params().get("objective") or "binary:logistic")
    if objective != "binary:logistic":
        raise NotCompilable(f"XGBoost objective {objective!r} cannot be fitted on Spark")
    params = {
        k: v for k, v in model.get_params().items() if v is not None and k not in _NOT_ON_SPARK
    }
    spark_model = SparkXGBClassifier(
        features_col=list(features),
        label_col=label,
        num_workers=workers,
        device="cpu",
        verbose=False,
        **params,
    ).fit(frame)
    model.load_model(bytearray(spark_model.get_booster().save_raw("ubj")))
    # The cluster's booster names its inputs after the frame's columns; a fit on this machine
    # sees the unnamed preprocessed matrix, and so do scoring and the compiled scorer.
    model.get_booster().feature_names = None
    return model


def _best_iteration(model: Any) -> int | None:
    try:
        best = getattr(model, "best_iteration", None)
    except AttributeError:  # xgboost raises when no early stopping was used
        return None
    return None if best is None else int(best)


def contributions(model: Any, xt: Any, exact: bool) -> Any:
    import numpy as np
    import xgboost as xgb

    booster = model.get_booster()
    missing = getattr(model, "missing", np.nan)
    threads = getattr(model, "n_jobs", None)
    dmatrix = xgb.DMatrix(
        xt,
        missing=np.nan if missing is None else missing,
        nthread=int(threads) if threads else -1,  # one thread for one record
    )
    kwargs: dict[str, Any] = {}
    best = _best_iteration(model)
    if best is not None:
        kwargs["iteration_range"] = (0, best + 1)
    contribs = booster.predict(dmatrix, pred_contribs=True, approx_contribs=not exact, **kwargs)
    return np.asarray(contribs)[:, :-1]  # the last column is the bias


def compile_estimator(model: Any) -> CompiledEstimator:
    import numpy as np
    import xgboost as xgb

    booster = model.get_booster()
    missing = getattr(model, "missing", np.nan)
    missing = np.nan if missing is None else missing
    best = _best_iteration(model)
    kwargs: dict[str, Any] = {"iteration_range": (0, best + 1)} if best is not None else {}
    objective = str(model.get_params().get("objective") or "binary:logistic")
    if not objective.startswith("binary:"):
        raise NotCompilable(f"XGBoost objective {objective!r} is not supported")

    def proba(x: np.ndarray) -> np.ndarray:
        return np.asarray(
            booster.inplace_predict(x, predict_type="value", missing=missing, **kwargs)
        )

    def pred_contribs(x: np.ndarray) -> np.ndarray:
        dm = xgb.DMatrix(x, missing=missing, nthread=1)
        out = booster.predict(dm, pred_contribs=True, approx_contribs=False, **kwargs)
        return np.asarray(out)[:, :-1]

    method = f"{KIND.reason_method}; XGBoost pred_contribs"
    contribs = pred_contribs
    if missing is np.nan or (isinstance(missing, float) and math.isnan(missing)):
        from modelkinds.parts.treeshap import TreeShap

        try:
            shap = TreeShap.of(booster, kwargs.get("iteration_range"))
            shap.warm_up()  # compiled now, not on the first request
            contribs = shap.contributions
            method = f"{KIND.reason_method}; {shap.how}, = XGBoost pred_contribs"
            proba = _from_leaves(shap, booster, proba, objective) or proba
        except ValueError as exc:  # unsupported: XGBoost's own, same values
            logger.info("TreeSHAP not built (%s); using pred_contribs", exc)
    return CompiledEstimator(proba, proba, contribs, method)


FEW_ROWS = 32  # up to this many rows the probability comes from TreeSHAP's reached leaves
PROBES = 512  # rows the leaf-sum probability is checked on against the booster, bit for bit


def _expf() -> Any:
    """The C library's ``expf`` (XGBoost's sigmoid calls it), or None where it is not found."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        expf = ctypes.CDLL(name).expf
    except (OSError, AttributeError):
        return None
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


def _from_leaves(shap: Any, booster: Any, proba: Any, objective: str) -> Any:
    """For a few rows, the probability from the leaves TreeSHAP's agreement matrix reaches
    (computed for the reasons anyway), summed as XGBoost sums them: float32, base margin first,
    tree by tree, then XGBoost's sigmoid ``1 / (expf(-m) + 1 + 1e-16)`` in float32. One
    ``inplace_predict`` costs about 0.2 ms for one row, mostly call overhead; this costs tens of
    microseconds. Used only when it equals the booster bit for bit on :data:`PROBES` rows built
    around the split thresholds (else None: the booster answers)."""
    import numpy as np

    expf = _expf()
    if expf is None or objective != "binary:logistic":
        return None
    raw = json.loads(booster.save_config())["learner"]["learner_model_param"]["base_score"]
    base_p = np.float32(float(str(raw).strip("[]")))
    one = np.float32(1.0)
    base = np.float32(-np.log(one / base_p - one))
    eps, clamp = np.float32(1e-16), np.float32(88.7)

    def few(x: Any) -> Any:
        margin = shap.margin32(x, base)
        out = np.empty(len(margin), dtype=np.float32)
        for i, m in enumerate(margin):
            e = np.float32(expf(float(min(-m, clamp))))
            out[i] = one / (e + one + eps)
        return out

    def predict(x: Any) -> Any:
        return few(x) if len(x) <= FEW_ROWS else proba(x)

    rng = np.random.default_rng(0)
    thresholds = shap.node_threshold.astype(np.float32)
    features = shap.node_feature
    probe = rng.normal(size=(PROBES, shap.n_features)).astype(np.float32)
    if len(thresholds):  # values on, just below and just above the split points
        pick = rng.integers(0, len(thresholds), size=probe.shape)
        near = thresholds[pick] * rng.choice([1.0, 1 - 1e-7, 1 + 1e-7], size=probe.shape)
        on_split = features[pick] == np.arange(shap.n_features)[None, :]
        probe = np.where(on_split | (rng.random(probe.shape) < 0.5), near, probe)
    probe[rng.random(probe.shape) < 0.05] = np.nan
    probe64 = probe.astype(np.float64)
    want = np.asarray(proba(probe64), dtype=np.float32)
    got = np.concatenate([few(probe64[i : i + 8]) for i in range(0, PROBES, 8)])
    if not np.array_equal(got, want):
        logger.info("leaf-sum probability differs from the booster's; using inplace_predict")
        return None
    return predict


KIND = ModelKind(
    name="xgb",
    label="XGBoost",
    order=30,
    estimator_classes=("XGBClassifier", "XGBRFClassifier"),
    # Bounded to serve within the promotion's latency budget (RISKSTREAM_SERVING_BUDGET_MS): at
    # most 600 trees of depth 5 keep exact TreeSHAP's per-leaf table small (about 1 ms per row).
    default_params={
        "n_estimators": 600,  # a cap: early stopping on the validation rows picks the count
        "max_depth": 5,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.7,
        "min_child_weight": 20,
        "reg_lambda": 5.0,
    },
    library_defaults={},
    search_space={
        "n_estimators": [600],
        "max_depth": [2, 3, 4, 5],
        "learning_rate": [0.03, 0.05, 0.1],
        "subsample": [0.7, 0.85, 1.0],
        "colsample_bytree": [0.5, 0.7, 1.0],
        "min_child_weight": [1, 5, 10, 20, 40],
        "reg_lambda": [1.0, 5.0, 20.0],
    },
    preprocess=native_trees,
    estimator=estimator,
    compile=compile_estimator,
    contributions=contributions,
    reason_method=TREESHAP,
    fit_trial=fit_trial,
    spark_fit=spark_fit,
)
