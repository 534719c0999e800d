"""The three model families as sklearn pipelines, and a bounded hyperparameter search (pure).

Each fitted model is one ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``
(docs/CONTRACTS.md). Class imbalance is handled in the fit (``class_weight`` /
``scale_pos_weight``); because that inflates the probabilities, the chosen estimator is then
calibrated (Platt scaling) on the validation rows, so ``predict_proba`` is a probability of
default again. The search tries the library-default-like configuration first, then random
configurations, and stops at a trial count or a time budget, whichever comes first.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, OrdinalEncoder, StandardScaler
from xgboost import XGBClassifier

from training.dataset import FeatureColumns

logger = logging.getLogger(__name__)

MODEL_TYPES: tuple[str, ...] = ("lr", "rf", "xgb")
MODEL_NAMES = {"lr": "Logistic Regression", "rf": "Random Forest", "xgb": "XGBoost"}


class ModelError(ValueError):
    """A model cannot be built or trained; the message names the problem."""


@dataclass(frozen=True)
class SearchBudget:
    """How much search each model gets: a time budget and a trial cap (whichever ends first)."""

    seconds: float = 25.0
    max_trials: int = 12
    n_jobs: int = 2
    seed: int = 42
    validation_size: float = 0.25
    # XGBoost's OpenMP threads spin at barriers: on a shared 2-core machine 2 threads measured
    # 5-10x slower than 1 (27 s vs 2.4 s for one fit). Raise on a dedicated machine.
    xgb_threads: int = 1

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.max_trials < 1:
            raise ModelError(
                f"search budget must be >= 0 seconds and >= 1 trial; got seconds={self.seconds}, "
                f"max_trials={self.max_trials}"
            )
        if not 0.05 <= self.validation_size <= 0.5:
            raise ModelError(f"validation_size={self.validation_size} must be in [0.05, 0.5]")


@dataclass
class Trial:
    params: dict[str, Any]
    validation_auc: float
    seconds: float


@dataclass
class FittedModel:
    """A calibrated pipeline, the search that chose it, and validation scores for thresholds."""

    kind: str
    pipeline: Pipeline
    best_params: dict[str, Any]
    trials: list[Trial]
    validation_y: np.ndarray
    validation_p: np.ndarray
    fit_seconds: float
    stopped_by: str  # "trials" | "time"
    extra: dict[str, Any] = field(default_factory=dict)


def check_kind(kind: str) -> str:
    if kind not in MODEL_TYPES:
        raise ModelError(f"unknown model {kind!r}; choose from {', '.join(MODEL_TYPES)}")
    return kind


# ---- preprocessing -------------------------------------------------------------------------
def build_preprocess(
    kind: str, columns: FeatureColumns, variant: str = "scaled"
) -> ColumnTransformer:
    """Linear models: imputed + scaled numerics (``binned`` adds quantile-bin indicators, a
    scorecard-style variant) and one-hot categoricals. Trees: imputed numerics, ordinal codes."""
    check_kind(kind)
    numeric, categorical = list(columns.numeric), list(columns.categorical)
    parts: list[tuple[str, Any, list[str]]] = []
    if kind == "lr":
        if numeric:
            parts.append(
                (
                    "num",
                    Pipeline(
                        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                    ),
                    numeric,
                )
            )
            if variant == "binned":
                parts.append(
                    (
                        "bin",
                        Pipeline(
                            [
                                ("impute", SimpleImputer(strategy="median")),
                                (
                                    "bins",
                                    KBinsDiscretizer(
                                        n_bins=10,
                                        encode="onehot",
                                        strategy="quantile",
                                        quantile_method="averaged_inverted_cdf",
                                    ),
                                ),
                            ]
                        ),
                        numeric,
                    )
                )
            elif variant != "scaled":
                raise ModelError(f"unknown lr variant {variant!r}; use 'scaled' or 'binned'")
        if categorical:
            parts.append(
                (
                    "cat",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore")),
                        ]
                    ),
                    categorical,
                )
            )
    else:
        if numeric:
            parts.append(("num", SimpleImputer(strategy="median"), numeric))
        if categorical:
            parts.append(
                (
                    "cat",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                            (
                                "ordinal",
                                OrdinalEncoder(
                                    handle_unknown="use_encoded_value", unknown_value=-1
                                ),
                            ),
                        ]
                    ),
                    categorical,
                )
            )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


# ---- estimators ----------------------------------------------------------------------------
def default_params(kind: str) -> dict[str, Any]:
    """The first trial: a configuration known to work well on credit-card data, so a small
    budget still yields a good model; the search can only improve on it (on validation)."""
    table: dict[str, dict[str, Any]] = {
        "lr": {"variant": "binned", "C": 0.01},
        "rf": {
            "n_estimators": 200,
            "max_depth": 12,
            "min_samples_leaf": 10,
            "max_features": 0.3,
        },
        "xgb": {
            "n_estimators": 300,
            "max_depth": 4,
            "learning_rate": 0.05,
            "subsample": 0.8,
            "colsample_bytree": 0.7,
            "min_child_weight": 5,
            "reg_lambda": 5.0,
        },
    }
    return table[check_kind(kind)]


def library_defaults(kind: str) -> dict[str, Any]:
    """Each library's own defaults (the benchmark's reference: a plain fit, no search)."""
    return {"lr": {"variant": "scaled"}, "rf": {}, "xgb": {}}[check_kind(kind)]


def search_space(kind: str) -> dict[str, list[Any]]:
    table: dict[str, dict[str, list[Any]]] = {
        "lr": {"variant": ["scaled", "binned"], "C": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
        "rf": {
            "n_estimators": [150, 250],
            "max_depth": [6, 8, 10, 14, None],
            "min_samples_leaf": [1, 5, 10, 25, 50],
            "max_features": ["sqrt", 0.3, 0.5],
        },
        "xgb": {
            "n_estimators": [200, 400, 600],
            "max_depth": [2, 3, 4, 5],
            "learning_rate": [0.02, 0.05, 0.1],
            "subsample": [0.7, 0.85, 1.0],
            "colsample_bytree": [0.5, 0.7, 1.0],
            "min_child_weight": [1, 5, 10, 20],
            "reg_lambda": [1.0, 5.0, 20.0],
        },
    }
    return table[check_kind(kind)]


def build_estimator(
    kind: str,
    params: dict[str, Any],
    pos_weight: float,
    n_jobs: int = 2,
    seed: int = 42,
    xgb_threads: int = 1,
) -> Any:
    """An unfitted estimator with imbalance handling; ``pos_weight`` = goods / bads."""
    check_kind(kind)
    p = {k: v for k, v in params.items() if k != "variant"}
    if kind == "lr":
        return LogisticRegression(class_weight="balanced", max_iter=2000, **p)
    if kind == "rf":
        return RandomForestClassifier(
            class_weight="balanced_subsample", n_jobs=n_jobs, random_state=seed, **p
        )
    return XGBClassifier(
        tree_method="hist",
        scale_pos_weight=pos_weight,
        n_jobs=xgb_threads,
        random_state=seed,
        eval_metric="auc",
        **p,
    )


def plain_pipeline(
    kind: str, columns: FeatureColumns, pos_weight: float, n_jobs: int = 2, seed: int = 42
) -> Pipeline:
    """The reference: default parameters, imbalance handled, no search, no calibration."""
    return Pipeline(
        [
            ("preprocess", build_preprocess(kind, columns)),
            ("model", build_estimator(kind, library_defaults(kind), pos_weight, n_jobs, seed)),
        ]
    )


# ---- search --------------------------------------------------------------------------------
def fit_with_search(
    kind: str,
    x: pd.DataFrame,
    y: np.ndarray,
    columns: FeatureColumns,
    budget: SearchBudget = SearchBudget(),
    clock: Callable[[], float] = time.monotonic,
) -> FittedModel:
    """Search on a stratified validation split of ``x``, calibrate the best on it, return it.

    Trial 1 is always :func:`default_params`; later trials come from :func:`search_space`. A
    trial starts only if the slowest trial so far would still fit in ``budget.seconds``.
    """
    check_kind(kind)
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise ModelError(f"cannot train {kind}: the training labels have one class only ({y[0]})")
    started = clock()
    fit_idx, val_idx = train_test_split(
        np.arange(len(x)), test_size=budget.validation_size, random_state=budget.seed, stratify=y
    )
    x_fit, x_val = x.iloc[fit_idx], x.iloc[val_idx]
    y_fit, y_val = y[fit_idx], y[val_idx]
    if len(np.unique(y_val)) < 2 or len(np.unique(y_fit)) < 2:
        raise ModelError(
            f"cannot train {kind}: {len(x)} training rows with {int(y.sum())} defaulters are too "
            "few to hold out validation rows of both classes"
        )
    pos_weight = float((y_fit == 0).sum() / max((y_fit == 1).sum(), 1))
    sampled = list(
        ParameterSampler(
            search_space(kind), n_iter=max(budget.max_trials - 1, 0), random_state=budget.seed
        )
    )
    candidates = [default_params(kind), *sampled][: budget.max_trials]
    transformed: dict[str, tuple[ColumnTransformer, np.ndarray, np.ndarray]] = {}
    trials: list[Trial] = []
    best: tuple[float, Any, dict[str, Any]] | None = None
    stopped_by = "trials"
    for params in candidates:
        elapsed = clock() - started
        if trials:
            slowest = max(t.seconds for t in trials)
            if elapsed + slowest > budget.seconds:
                stopped_by = "time"
                break
        trial_start = clock()
        variant = params.get("variant", "scaled")
        if variant not in transformed:
            pre = build_preprocess(kind, columns, variant)
            with warnings.catch_warnings():
                # Discrete features have fewer distinct quantiles than bins; that is expected.
                warnings.filterwarnings("ignore", message="Bins whose width are too small")
                transformed[variant] = (pre, pre.fit_transform(x_fit), pre.transform(x_val))
        pre, t_fit, t_val = transformed[variant]
        estimator = build_estimator(
            kind, params, pos_weight, budget.n_jobs, budget.seed, budget.xgb_threads
        )
        estimator.fit(t_fit, y_fit)
        auc = float(roc_auc_score(y_val, estimator.predict_proba(t_val)[:, 1]))
        seconds = clock() - trial_start
        trials.append(Trial(dict(params), auc, seconds))
        logger.info(
            "%s trial %d: validation AUC %.4f in %.1fs %s", kind, len(trials), auc, seconds, params
        )
        if best is None or auc > best[0]:
            best = (auc, estimator, params)
    assert best is not None  # at least one trial always runs
    _, estimator, params = best
    pre, _, t_val = transformed[params.get("variant", "scaled")]
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method="sigmoid")
    calibrated.fit(t_val, y_val)
    pipeline = Pipeline([("preprocess", pre), ("model", calibrated)])
    return FittedModel(
        kind=kind,
        pipeline=pipeline,
        best_params=dict(params),
        trials=trials,
        validation_y=y_val,
        validation_p=calibrated.predict_proba(t_val)[:, 1],
        fit_seconds=clock() - started,
        stopped_by=stopped_by,
        extra={"pos_weight": pos_weight, "fit_rows": len(fit_idx), "validation_rows": len(val_idx)},
    )


# ---- explanation ---------------------------------------------------------------------------
def base_estimator(pipeline: Pipeline) -> Any:
    """The fitted estimator inside the pipeline's (possibly calibrated) model step."""
    model = pipeline.named_steps["model"]
    if isinstance(model, CalibratedClassifierCV):
        inner = model.calibrated_classifiers_[0].estimator
        return inner.estimator if isinstance(inner, FrozenEstimator) else inner
    return model


def feature_importance(pipeline: Pipeline) -> pd.Series:
    """Importance per model input (one-hot and bin columns separately), largest first:
    |coefficient| on standardised inputs for LR, the library's importance for trees."""
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    est = base_estimator(pipeline)
    if hasattr(est, "coef_"):
        values = np.abs(np.asarray(est.coef_)).ravel()
    elif hasattr(est, "feature_importances_"):
        values = np.asarray(est.feature_importances_, dtype=float)
    else:  # pragma: no cover - every model type has one of the two
        raise ModelError(f"{type(est).__name__} exposes no coefficients or importances")
    return pd.Series(values, index=list(names)).sort_values(ascending=False)
