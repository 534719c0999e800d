"""The model kinds (modelkinds/) as sklearn pipelines, and a bounded hyperparameter search (pure).

Each fitted model is one ``Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])``
(docs/CONTRACTS.md). Class imbalance is handled in the fit (``class_weight`` /
``scale_pos_weight``); because that inflates the probabilities, the chosen estimator is then
calibrated (Platt scaling) on out-of-fold scores of the training rows, so ``predict_proba`` is a
probability of default again. The search tries the library-default-like configuration first,
then seeded random configurations, up to a trial count; a time budget is only an upper guard.
The chosen configuration is refitted on all training rows (see :func:`fit_with_search`).
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
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    ParameterSampler,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)
from sklearn.pipeline import Pipeline

import modelkinds
from modelkinds import FitOptions, ModelKind
from riskstream.names import FIT_ONE_MACHINE
from riskstream.scorescale import ScoreScale
from training.dataset import FeatureColumns

logger = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model cannot be built or trained; the message names the problem."""


@dataclass(frozen=True)
class SearchBudget:
    """How much search each model gets: a time budget and a trial cap (whichever ends first)."""

    seconds: float = 900.0  # an upper guard only; the trial count bounds the search
    max_trials: int = 12
    n_jobs: int = 2
    seed: int = 42
    validation_size: float = 0.25
    # XGBoost's OpenMP threads spin at barriers: on a shared 2-core machine 2 threads measured
    # 5-10x slower than 1 (27 s vs 2.4 s for one fit). Raise on a dedicated machine.
    xgb_threads: int = 1
    cv_folds: int = 3  # out-of-fold scores for calibration and the threshold
    early_stopping_rounds: int = 200  # XGBoost, on the inner validation rows
    # Above this many training rows the search runs on a sample of about this many (account-
    # grouped, stratified); the out-of-fold fits and the refit see every row. None: no sample.
    search_rows: int | None = None

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.max_trials < 1:
            raise ModelError(
                f"search budget must be >= 0 seconds and >= 1 trial; got seconds={self.seconds}, "
                f"max_trials={self.max_trials}"
            )
        if not 2 <= self.cv_folds <= 10:
            raise ModelError(f"cv_folds={self.cv_folds} must be between 2 and 10")
        if not 0.05 <= self.validation_size <= 0.5:
            raise ModelError(f"validation_size={self.validation_size} must be in [0.05, 0.5]")
        if self.search_rows is not None and self.search_rows < 100:
            raise ModelError(f"search_rows={self.search_rows} must be 100 or more (or None)")


@dataclass(frozen=True)
class Refit:
    """Where the chosen configuration is fitted past one machine (training.spark_fit).

    ``fit(estimator, t, y)`` fits an unfitted estimator on a preprocessed matrix and returns it
    fitted, of the same class; the out-of-fold fits and the refit go through it. The search
    then runs on one machine on a stratified sample of at most ``search_rows`` training rows,
    and ``engine`` says where the fits ran, ``where`` on what (both recorded on the run)."""

    fit: Callable[[Any, np.ndarray, np.ndarray], Any]
    search_rows: int
    engine: str
    where: dict[str, Any] = field(default_factory=dict)  # e.g. the master and the workers


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
    """``kind`` if it is a registered model kind, else a :class:`ModelError` naming them."""
    return _kind(kind).name


def _kind(kind: str) -> ModelKind:
    try:
        return modelkinds.get(kind)
    except modelkinds.UnknownModelKind as exc:
        raise ModelError(str(exc)) from None


# ---- per kind: the registry (modelkinds/) ---------------------------------------------------
def build_preprocess(
    kind: str, columns: FeatureColumns, variant: str | None = None
) -> ColumnTransformer:
    """The kind's unfitted preprocessing for these columns; ``variant`` picks one of its
    variants (None: its default; kinds with one preprocessing ignore it)."""
    spec = _kind(kind)
    try:
        return spec.preprocess(list(columns.numeric), list(columns.categorical), variant)
    except ValueError as exc:  # an unknown variant
        raise ModelError(str(exc)) from None


def default_params(kind: str) -> dict[str, Any]:
    """The first trial: a configuration known to work well on credit-card data, so a small
    budget still yields a good model; the search can only improve on it (on validation)."""
    return dict(_kind(kind).default_params)


def library_defaults(kind: str) -> dict[str, Any]:
    """Each library's own defaults (the benchmark's reference: a plain fit, no search)."""
    return dict(_kind(kind).library_defaults)


def search_space(kind: str) -> dict[str, list[Any]]:
    return {name: list(values) for name, values in _kind(kind).search_space.items()}


def build_estimator(
    kind: str,
    params: dict[str, Any],
    pos_weight: float,
    n_jobs: int = 2,
    seed: int = 42,
    xgb_threads: int = 1,
) -> Any:
    """An unfitted estimator with imbalance handling; ``pos_weight`` = goods / bads."""
    spec = _kind(kind)
    p = {k: v for k, v in params.items() if k != "variant"}
    return spec.estimator(p, FitOptions(pos_weight, n_jobs, seed, xgb_threads))


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


def configured_pipeline(
    kind: str,
    columns: FeatureColumns,
    params: dict[str, Any],
    pos_weight: float,
    budget: SearchBudget = SearchBudget(),
) -> Pipeline:
    """An unfitted pipeline for one searched configuration (its ``variant`` picks the linear
    preprocessing), as the protocol refits it on all training rows."""
    return Pipeline(
        [
            ("preprocess", build_preprocess(kind, columns, params.get("variant"))),
            (
                "model",
                build_estimator(
                    kind, params, pos_weight, budget.n_jobs, budget.seed, budget.xgb_threads
                ),
            ),
        ]
    )


# ---- search --------------------------------------------------------------------------------
def _response(estimator: Any, t: np.ndarray) -> np.ndarray:
    """What sigmoid calibration of a frozen estimator reads: the decision function where there
    is one (as scikit-learn does), else the probability of the positive class."""
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(t), dtype=float)
    return np.asarray(estimator.predict_proba(t)[:, 1], dtype=float)


def _fit_trial(
    kind: str,
    params: dict[str, Any],
    t_fit: np.ndarray,
    y_fit: np.ndarray,
    t_val: np.ndarray,
    y_val: np.ndarray,
    pos_weight: float,
    budget: SearchBudget,
) -> tuple[float, dict[str, Any]]:
    """Fit one configuration on the fit rows, its validation AUC, and the parameters to refit
    with (XGBoost: early stopping on the validation rows fixes ``n_estimators``)."""
    estimator = build_estimator(
        kind, params, pos_weight, budget.n_jobs, budget.seed, budget.xgb_threads
    )
    options = FitOptions(
        pos_weight, budget.n_jobs, budget.seed, budget.xgb_threads, budget.early_stopping_rounds
    )
    found = {**params, **_kind(kind).fit_trial(estimator, t_fit, y_fit, t_val, y_val, options)}
    auc = float(roc_auc_score(y_val, estimator.predict_proba(t_val)[:, 1]))
    return auc, found


def _settled(kind: str, pipeline: Pipeline) -> Pipeline:
    """The fitted pipeline as its kind wants it kept (e.g. a forest predicting on one thread,
    so that two identical forests cannot differ in the last bit)."""
    _kind(kind).settle(pipeline.named_steps["model"])
    return pipeline


def _fit_pipeline(
    make: Callable[[], Pipeline], x: pd.DataFrame, y: np.ndarray, refit: Refit | None
) -> Pipeline:
    """``make()`` fitted on ``x``: in one piece on this machine, or the preprocessing here and
    the estimator through ``refit`` (the same pipeline of fitted steps either way)."""
    pipeline = make()
    if refit is None:
        return pipeline.fit(x, y)
    pre = pipeline.named_steps["preprocess"]
    t = pre.fit_transform(x)
    model = refit.fit(pipeline.named_steps["model"], np.asarray(t, dtype=float), y)
    return Pipeline([("preprocess", pre), ("model", model)])


def search_sample(
    y: np.ndarray, rows: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """The positions (in order) of the training rows the search runs on: every row when there
    are at most ``rows``; else a sample of about ``rows`` of them, the same for the same seed.

    Without ``groups`` a stratified sample of exactly ``rows`` rows. With ``groups`` (an account
    per row, a panel) whole accounts are drawn, so that an account's rows are all in or all out
    (the search's inner split keeps them together too), stratified by whether the account ever
    defaulted; the sample has about ``rows`` rows (whole accounts)."""
    y = np.asarray(y)
    if rows >= len(y):
        return np.arange(len(y))
    if groups is None:
        kept, _ = train_test_split(
            np.arange(len(y)), train_size=rows, random_state=seed, stratify=y
        )
        return np.sort(kept)
    codes, first = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = len(codes)
    take = min(n_groups - 1, max(2, round(n_groups * rows / len(y))))
    ever = np.zeros(n_groups, dtype=int)
    np.maximum.at(ever, first, y.astype(int))
    strata = ever if np.bincount(ever, minlength=2).min() >= 2 else None
    chosen, _ = train_test_split(
        np.arange(n_groups), train_size=take, random_state=seed, stratify=strata
    )
    keep = np.zeros(n_groups, dtype=bool)
    keep[chosen] = True
    return np.flatnonzero(keep[first])


def _inner_split(
    rows: np.ndarray, y: np.ndarray, groups: np.ndarray | None, budget: SearchBudget
) -> tuple[np.ndarray, np.ndarray]:
    """The search's inner split of ``rows`` (positions): fit and validation rows, stratified,
    an account's rows on one side (with ``groups``)."""
    if groups is None:
        fit_idx, val_idx = train_test_split(
            rows,
            test_size=budget.validation_size,
            random_state=budget.seed,
            stratify=y[rows],
        )
        return fit_idx, val_idx
    inner = StratifiedGroupKFold(
        max(2, round(1 / budget.validation_size)), shuffle=True, random_state=budget.seed
    )
    fit_pos, val_pos = next(inner.split(np.zeros(len(rows)), y[rows], np.asarray(groups)[rows]))
    return rows[fit_pos], rows[val_pos]


def fit_with_search(
    kind: str,
    x: pd.DataFrame,
    y: np.ndarray,
    columns: FeatureColumns,
    budget: SearchBudget = SearchBudget(),
    clock: Callable[[], float] = time.monotonic,
    refit: Refit | None = None,
    groups: np.ndarray | None = None,
    progress: Any = None,
) -> FittedModel:
    """Choose, refit and calibrate one model using the training rows ``x`` only.

    1. Search: trial 1 is :func:`default_params`, later trials are drawn from
       :func:`search_space` with ``budget.seed``, up to ``budget.max_trials``; each is fitted on
       a stratified inner split and scored by ROC-AUC on the held-out inner validation rows
       (XGBoost stops early on them). The time budget is only an upper guard: a trial starts
       unless the slowest so far would overrun it, and ``stopped_by`` says when it bit.
    2. Out-of-fold scores: the chosen configuration, ``budget.cv_folds``-fold stratified CV over
       all training rows; the calibration and the decision threshold are fitted on these.
    3. Refit on all training rows; Platt scaling (fitted on the out-of-fold scores) on top.

    With ``groups`` (an account per row, a panel of several observation dates), the inner split
    and the folds keep each group's rows together (stratified group folds): no account informs
    the rows it is scored on.

    Same data, columns and seed give the same model on any machine unless the guard bites.

    With more training rows than ``budget.search_rows``, step 1 runs on a sample of about that
    many (:func:`search_sample`: whole accounts, stratified); steps 2 and 3 see every row, and
    what the chosen trial fixed itself (XGBoost's rounds) is fixed again on the inner split of
    every row (on one machine; with ``refit`` the sample's stays).

    With ``refit`` (a large table and a Spark cluster), step 1 runs here on a stratified sample
    of at most ``refit.search_rows`` training rows, and the fits of steps 2 and 3 (all rows)
    go through ``refit.fit``.

    ``progress`` (a ``riskstream.progress.Progress``) counts the fits: the trials, the folds
    and the refit.
    """
    check_kind(kind)
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise ModelError(f"cannot train {kind}: the training labels have one class only ({y[0]})")
    started = clock()
    limit = refit.search_rows if refit is not None else budget.search_rows
    searched = np.arange(len(y))
    if limit is not None and limit < len(y):
        searched = search_sample(y, limit, budget.seed, groups)
        logger.info(
            "%s: the search runs on %d of %d training rows (%s); the folds and the refit on all",
            kind,
            len(searched),
            len(y),
            "whole accounts, stratified" if groups is not None else "stratified",
        )
    fit_idx, val_idx = _inner_split(searched, y, groups, budget)
    x_fit, x_val = x.iloc[fit_idx], x.iloc[val_idx]
    y_fit, y_val = y[fit_idx], y[val_idx]
    if len(np.unique(y_val)) < 2 or len(np.unique(y_fit)) < 2 or int(y.sum()) < budget.cv_folds:
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
    if progress is not None:
        progress.set(0, total=len(candidates) + budget.cv_folds + 1)
    transformed: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
    trials: list[Trial] = []
    best: tuple[float, dict[str, Any]] | None = None
    chosen: dict[str, Any] = {}  # the best trial's configuration as drawn
    stopped_by = "trials"
    for params in candidates:
        elapsed = clock() - started
        if trials:
            slowest = max(t.seconds for t in trials)
            if elapsed + slowest > budget.seconds:
                stopped_by = "time"
                logger.warning(
                    "%s search stopped by the %.0fs time guard after %d of %d trials: the result "
                    "may differ on a faster machine; raise the budget for reproducibility",
                    kind,
                    budget.seconds,
                    len(trials),
                    len(candidates),
                )
                break
        trial_start = clock()
        variant = params.get("variant")
        if variant not in transformed:
            pre = build_preprocess(kind, columns, variant)
            with warnings.catch_warnings():
                # Discrete features have fewer distinct quantiles than bins; that is expected.
                warnings.filterwarnings("ignore", message="Bins whose width are too small")
                transformed[variant] = (pre.fit_transform(x_fit), pre.transform(x_val))
        t_fit, t_val = transformed[variant]
        auc, found = _fit_trial(kind, params, t_fit, y_fit, t_val, y_val, pos_weight, budget)
        seconds = clock() - trial_start
        trials.append(Trial(found, auc, seconds))
        logger.info(
            "%s trial %d: validation AUC %.4f in %.1fs %s", kind, len(trials), auc, seconds, found
        )
        if best is None or auc > best[0]:  # ties: the earlier trial wins
            best, chosen = (auc, found), params
        if progress is not None:
            progress.update(1)
    assert best is not None  # at least one trial always runs
    _, params = best
    settled = False
    if refit is None and len(searched) < len(y) and params != chosen:
        # What the trial fixed (XGBoost's rounds, by early stopping) was found on the sample;
        # a larger table carries more: fix it again on the inner split of every training row.
        all_fit, all_val = _inner_split(np.arange(len(y)), y, groups, budget)
        pre = build_preprocess(kind, columns, chosen.get("variant"))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Bins whose width are too small")
            t_fit, t_val = pre.fit_transform(x.iloc[all_fit]), pre.transform(x.iloc[all_val])
        weight = float((y[all_fit] == 0).sum() / max((y[all_fit] == 1).sum(), 1))
        _, params = _fit_trial(kind, chosen, t_fit, y[all_fit], t_val, y[all_val], weight, budget)
        settled = True
        if progress is not None:  # one fit more than planned
            progress.set(progress.done + 1, total=(progress.total or 0) + 1)
        logger.info("%s: the chosen configuration settled on every training row: %s", kind, params)
    if progress is not None and stopped_by == "time":  # fewer trials than planned
        progress.set(len(trials), total=len(trials) + budget.cv_folds + 1)
    full_weight = float((y == 0).sum() / max((y == 1).sum(), 1))

    def make() -> Pipeline:
        return configured_pipeline(kind, columns, params, full_weight, budget)

    oof_raw = np.empty(len(x), dtype=float)
    if groups is None:
        splits = StratifiedKFold(budget.cv_folds, shuffle=True, random_state=budget.seed).split(
            np.zeros(len(y)), y
        )
    else:
        splits = StratifiedGroupKFold(
            budget.cv_folds, shuffle=True, random_state=budget.seed
        ).split(np.zeros(len(y)), y, groups)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        for part, held in splits:
            fold = _settled(kind, _fit_pipeline(make, x.iloc[part], y[part], refit))
            oof_raw[held] = _response(fold.named_steps["model"], fold[:-1].transform(x.iloc[held]))
            if progress is not None:
                progress.update(1)
        final = _settled(kind, _fit_pipeline(make, x, y, refit))
        if progress is not None:
            progress.update(1)
    pre, estimator = final.named_steps["preprocess"], final.named_steps["model"]
    t_all = pre.transform(x)
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method="sigmoid")
    calibrated.fit(t_all, y)  # builds the structure; the map is refitted out of fold below
    platt = calibrated.calibrated_classifiers_[0].calibrators[0]
    platt.fit(oof_raw, y)
    pipeline = Pipeline([("preprocess", pre), ("model", calibrated)])
    oof_p = platt.predict(oof_raw)
    return FittedModel(
        kind=kind,
        pipeline=pipeline,
        best_params=dict(params),
        trials=trials,
        validation_y=y,
        validation_p=oof_p,
        fit_seconds=clock() - started,
        stopped_by=stopped_by,
        extra={
            "pos_weight": full_weight,
            "fit_rows": len(x),
            "search_fit_rows": len(fit_idx),
            "search_validation_rows": len(val_idx),
            "cv_folds": budget.cv_folds,
            "cv_roc_auc": float(roc_auc_score(y, oof_raw)),
            "search_rows": len(searched),
            "search_seconds": sum(t.seconds for t in trials),
            "search_settled_on_all_rows": settled,
            "fit_engine": FIT_ONE_MACHINE if refit is None else refit.engine,
            "fit_where": {} if refit is None else dict(refit.where),
        },
    )


# ---- what the kind publishes -----------------------------------------------------------------
def kind_report(
    kind: str, pipeline: Pipeline, scale: ScoreScale | None = None
) -> modelkinds.KindReport | None:
    """The kind's report on a fitted (calibrated) pipeline, e.g. the scorecard's points table
    (:attr:`modelkinds.ModelKind.report`); None for a kind that publishes nothing."""
    report = _kind(kind).report
    if report is None:
        return None
    model = pipeline.named_steps["model"]
    calibration: tuple[float, float] | None = None
    if isinstance(model, CalibratedClassifierCV):
        platt = model.calibrated_classifiers_[0].calibrators[0]
        # sklearn's sigmoid: pd = 1 / (1 + exp(a * raw + b))
        calibration = (-float(platt.a_), -float(platt.b_))
    pre = pipeline.named_steps["preprocess"]
    columns = tuple(str(c) for c in pre.get_feature_names_out())
    context = modelkinds.ReportContext(columns, calibration, scale or ScoreScale(), pre)
    return report(base_estimator(pipeline), context)


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
