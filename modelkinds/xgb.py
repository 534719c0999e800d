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
            contribs = shap.contributions
            method = f"{KIND.reason_method}; {shap.how}, = XGBoost pred_contribs"
        except ValueError as exc:  # unsupported: XGBoost's own, same values
            logger.info("TreeSHAP not built (%s); using pred_contribs", exc)
    return CompiledEstimator(proba, proba, contribs, method)


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
