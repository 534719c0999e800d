"""Training with MLflow tracking and the model registry (entry/I-O module).

One parent run per training execution, one nested run per model. The four steps are separate
functions so the Airflow DAG can run them as tasks (see ``pipeline.steps``); the models may train
in parallel processes under the same parent run, because every step re-reads what it needs
(configuration from the parent run's params, the data from S3, checked against the parent's
digest).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import modelkinds
from riskstream import names
from riskstream.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DEFAULT_MAX_ECE,
    DEFAULT_MAX_TRIALS,
    DEFAULT_MIN_KS,
    DEFAULT_TRAIN_BUDGET_SECONDS,
)
from riskstream.settings import Settings
from training import plots
from training.baseline import build_baseline
from training.data import (
    FeatureTable,
    default_features_uri,
    log_dataset_inputs,
    read_feature_table,
    read_oracle,
)
from training.dataset import (
    KEY_COLUMNS,
    FeatureColumns,
    TrainingDataError,
    feature_columns,
    labelled,
    split_rows,
)
from training.delong import auc_ci, paired_test
from training.fairness import fairness_report, min_air
from training.lawful import InputPolicy, InputSelection, select_inputs
from training.metrics import CostMatrix, cost_optimal_threshold, evaluate
from training.modelcard import model_card
from training.models import (
    ModelError,
    SearchBudget,
    check_kind,
    feature_importance,
    fit_with_search,
)
from training.promotion import Decision, PromotionPolicy, decide

logger = logging.getLogger(__name__)

CHAMPION = CHAMPION_ALIAS
CHALLENGER = CHALLENGER_ALIAS


class TrainingError(RuntimeError):
    """A training step cannot go on; the message says what and how to fix it."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a training execution is configured with; stored as the parent run's params."""

    models: tuple[str, ...] = field(default_factory=modelkinds.names)
    # an upper guard on search time per model (reported if hit); the trial count bounds the search
    budget_seconds: float = DEFAULT_TRAIN_BUDGET_SECONDS
    max_trials: int = DEFAULT_MAX_TRIALS  # search trials per model: what bounds the search
    n_jobs: int = 2  # Random Forest workers
    xgb_threads: int = 1  # see SearchBudget.xgb_threads
    seed: int = 42
    test_size: float = 1 / 3
    cost_fn: float = 10.0  # a missed defaulter
    cost_fp: float = 1.0  # a wrongly rejected good customer
    alpha: float = 0.05  # one-sided level of DeLong's paired test against the champion
    min_ks: float = DEFAULT_MIN_KS
    max_ece: float = DEFAULT_MAX_ECE
    # How the execution's best model is chosen, on out-of-fold scores of the training rows:
    select_by: str = "expected_cost"  # or "roc_auc"
    promote_override: bool = False  # promote even when the champion cannot be evaluated
    cv_folds: int = 3
    protected_extra: tuple[str, ...] = ()  # added to training.lawful.DEFAULT_PROTECTED
    allow_age: bool = False  # age as a model input, only where the law allows it
    # The feature table's windows, recorded with the model (0 = not known, e.g. a table built
    # outside the pipeline): months of history before each observation date, months after it in
    # which a default makes the label.
    lookback_months: int = 0
    performance_months: int = 0

    def __post_init__(self) -> None:
        for kind in self.models:
            check_kind(kind)
        if not self.models:
            raise ModelError(f"no models to train; choose from {modelkinds.default_models()}")
        if self.select_by not in ("expected_cost", "roc_auc"):
            raise ModelError(f"select_by={self.select_by!r}: use expected_cost or roc_auc")

    @property
    def budget(self) -> SearchBudget:
        return SearchBudget(
            self.budget_seconds,
            self.max_trials,
            self.n_jobs,
            self.seed,
            xgb_threads=self.xgb_threads,
            cv_folds=self.cv_folds,
        )

    @property
    def costs(self) -> CostMatrix:
        return CostMatrix(self.cost_fn, self.cost_fp)

    @property
    def policy(self) -> PromotionPolicy:
        return PromotionPolicy(self.alpha, self.min_ks, self.max_ece, self.promote_override)

    @property
    def inputs(self) -> InputPolicy:
        return InputPolicy(self.protected_extra, self.allow_age)

    def with_settings(self, settings: Settings) -> TrainingConfig:
        """Add the deployment's protected list and age opt-in (``Settings``) to this config."""
        extra = tuple(dict.fromkeys([*self.protected_extra, *settings.protected_attributes]))
        return dataclasses.replace(
            self, protected_extra=extra, allow_age=self.allow_age or settings.allow_age
        )

    def to_params(self) -> dict[str, str]:
        out = {k: str(v) for k, v in dataclasses.asdict(self).items()}
        out["models"] = ",".join(self.models)
        out["protected_extra"] = ",".join(self.protected_extra)
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TrainingConfig:
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in params:
                continue
            raw = params[f.name]
            if f.name in ("models", "protected_extra"):
                kwargs[f.name] = tuple(m for m in raw.split(",") if m)
            elif f.name == "select_by":
                kwargs[f.name] = raw
            elif f.type in ("bool", bool):
                kwargs[f.name] = raw == "True"
            elif f.type in ("int", int):
                kwargs[f.name] = int(raw)
            else:
                kwargs[f.name] = float(raw)
        return cls(**kwargs)


@dataclass
class TrainingReport:
    parent_run_id: str
    run_url: str
    models: list[dict[str, Any]]
    decision: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


# ---- MLflow plumbing -----------------------------------------------------------------------
def _mlflow(settings: Settings) -> Any:
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return mlflow


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def experiment_name(settings: Settings) -> str:
    return names.experiment_name(settings)


def ensure_experiment(settings: Settings) -> str:
    client = _client(settings)
    name = experiment_name(settings)
    try:
        found = client.get_experiment_by_name(name)
    except Exception as exc:  # connection refused, DNS, ...: say where we tried
        raise TrainingError(
            f"cannot reach MLflow at {settings.mlflow_tracking_uri} ({type(exc).__name__}: "
            f"{exc}); start it with `riskstream mlflow up`"
        ) from None
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


@dataclass
class Prepared:
    table: FeatureTable
    columns: FeatureColumns
    train: pd.DataFrame
    test: pd.DataFrame
    split_description: dict[str, object]
    inputs: InputSelection
    dropped_empty: tuple[str, ...] = ()
    portfolio: str = ""

    def features_document(self, config: TrainingConfig) -> dict[str, object]:
        """``features.json``: what the model reads, and what was kept out of it and why."""
        return {
            "features": self.columns.all,
            "numeric": list(self.columns.numeric),
            "categorical": list(self.columns.categorical),
            "protected_present_not_inputs": list(self.inputs.protected),
            "identifiers_not_inputs": list(self.inputs.identifiers),
            "dropped_all_empty_or_constant": list(self.dropped_empty),
            "portfolio": self.portfolio,
            "policy": config.inputs.describe(),
        }


def select_columns(
    rows: pd.DataFrame, policy: InputPolicy, where: str
) -> tuple[FeatureColumns, InputSelection, tuple[str, ...]]:
    """The model inputs of a labelled table: no protected attribute, no identifier, no column
    that is empty or constant in every row (one note says which were dropped: a flat applicant
    table has no statement history, so its history features are all empty)."""
    candidates = [c for c in rows.columns if c not in KEY_COLUMNS]
    selection = select_inputs(candidates, policy)
    empty = tuple(c for c in selection.features if rows[c].nunique(dropna=False) <= 1)
    if empty:
        logger.info(
            "%d columns are empty or constant in every labelled row, not model inputs: %s",
            len(empty),
            ", ".join(empty),
        )
    usable = [c for c in selection.features if c not in empty]
    if not usable:
        raise TrainingDataError(
            f"feature table {where} has no usable model input: of {candidates}, protected "
            f"{list(selection.protected)}, identifiers {list(selection.identifiers)}, empty "
            f"{list(empty)}; add evidence columns (or set RISKSTREAM_ALLOW_AGE=1 where the law "
            "allows age)"
        )
    return feature_columns(rows[usable]), selection, empty


def prepare(settings: Settings, features_uri: str, config: TrainingConfig) -> Prepared:
    table = read_feature_table(settings, features_uri)
    check_portfolio(table.frame, settings.portfolio, table.uri)
    rows = labelled(table.frame, table.uri)
    columns, selection, empty = select_columns(rows, config.inputs, table.uri)
    # Integers become doubles: a missing value at scoring time must not break the signature.
    for name in columns.numeric:
        if not pd.api.types.is_float_dtype(rows[name].dtype):
            rows[name] = rows[name].astype("float64")
    split = split_rows(rows, config.test_size, config.seed)
    return Prepared(
        table,
        columns,
        rows.iloc[split.train_index].reset_index(drop=True),
        rows.iloc[split.test_index].reset_index(drop=True),
        split.description,
        selection,
        empty,
        settings.portfolio,
    )


def check_portfolio(frame: pd.DataFrame, portfolio: str, where: str) -> None:
    """A model is trained on one portfolio's rows only: refuse a table holding another's."""
    if "source" not in frame.columns or frame.empty:
        return
    found = sorted(str(v) for v in frame["source"].dropna().unique())
    if found != [portfolio]:
        raise TrainingDataError(
            f"feature table {where} holds rows of portfolio(s) {found}, not only {portfolio!r}: "
            "train each portfolio on its own features (names.features_location)"
        )


def _prepare_for_parent(
    settings: Settings, parent_run_id: str
) -> tuple[Any, TrainingConfig, Prepared]:
    client = _client(settings)
    parent = client.get_run(parent_run_id)
    config = TrainingConfig.from_params(parent.data.params)
    uri = parent.data.tags.get(names.TAG_FEATURES_URI) or default_features_uri(settings)
    prepared = prepare(settings, uri, config)
    expected = parent.data.tags.get(names.TAG_FEATURES_DIGEST)
    if expected and prepared.table.digest != expected:
        raise TrainingError(
            f"the feature table {uri} changed since training run {parent_run_id} started "
            f"(digest {prepared.table.digest} != {expected}); start a new training execution"
        )
    return parent, config, prepared


def _pip_requirements() -> list[str]:
    import importlib

    modules = {
        "mlflow": "mlflow",
        "scikit-learn": "sklearn",
        "xgboost": "xgboost",  # installed here as xgboost-cpu: same module
        "cloudpickle": "cloudpickle",
        "pandas": "pandas",
        "numpy": "numpy",
    }
    return [f"{pkg}=={importlib.import_module(mod).__version__}" for pkg, mod in modules.items()]


# ---- step 1: the parent run ----------------------------------------------------------------
def start_training(
    settings: Settings, features_uri: str | None = None, config: TrainingConfig | None = None
) -> str:
    """Open the parent run: configuration, data version, split, dataset inputs. Returns its id."""
    config = (config or TrainingConfig()).with_settings(settings)
    mlflow = _mlflow(settings)
    experiment_id = ensure_experiment(settings)
    prepared = prepare(settings, features_uri or default_features_uri(settings), config)
    table = prepared.table
    run_name = f"training {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(config.to_params())
        mlflow.set_tags(
            {
                names.TAG_FEATURES_URI: table.uri,
                names.TAG_FEATURES_DIGEST: table.digest,
                "features_files": str(len(table.keys)),
                "split_strategy": str(prepared.split_description["strategy"]),
                "registered_model": settings.registered_model_name,
                "role": "training_execution",
            }
        )
        mlflow.log_dict(prepared.split_description, "split/split.json")
        mlflow.log_dict(prepared.features_document(config), "split/feature_columns.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "test_accounts.parquet"
            prepared.test[["account_id", "obs_date"]].to_parquet(path, index=False)
            mlflow.log_artifact(str(path), "split")
        mlflow.log_metrics(
            {
                "rows_train": len(prepared.train),
                "rows_test": len(prepared.test),
                "default_rate_train": float(prepared.train["label"].mean()),
                "default_rate_test": float(prepared.test["label"].mean()),
            }
        )
        log_dataset_inputs(table, prepared.train, prepared.test)
        run_id = str(run.info.run_id)
    # Keep the parent open until evaluate_and_register closes it.
    _client(settings).update_run(run_id, status="RUNNING")
    logger.info("training execution %s started on %s", run_id, table.uri)
    return run_id


# ---- step 2: one model ---------------------------------------------------------------------
def _oracle_metrics(settings: Settings, test: pd.DataFrame, p: np.ndarray) -> dict[str, float]:
    oracle = read_oracle(settings)
    if oracle is None:
        return {}
    oracle = oracle.copy()
    oracle["account_id"] = oracle["account_id"].astype(str)
    if "observed_date" in oracle.columns and oracle["account_id"].duplicated().any():
        oracle = oracle.sort_values("observed_date").drop_duplicates("account_id", keep="last")
    wanted = ["account_id", "true_pd", *(["attainable_pd"] if "attainable_pd" in oracle else [])]
    merged = (
        test[["account_id", "label"]]
        .assign(p=p)
        .merge(oracle[wanted].drop_duplicates("account_id"), on="account_id")
    )
    if merged.empty or merged["label"].nunique() < 2:
        logger.warning("oracle true_pd matches %d test accounts: no oracle AUC", len(merged))
        return {}
    out = {
        "oracle_roc_auc": float(roc_auc_score(merged["label"], merged["true_pd"])),
        "roc_auc_oracle_accounts": float(roc_auc_score(merged["label"], merged["p"])),
        "oracle_accounts": float(len(merged)),
    }
    if "attainable_pd" in merged:  # the ceiling from what the stream shows (ingestion.synthetic)
        out["attainable_roc_auc"] = float(roc_auc_score(merged["label"], merged["attainable_pd"]))
        out["gap_to_attainable"] = out["roc_auc_oracle_accounts"] - out["attainable_roc_auc"]
    return out


def train_model(settings: Settings, parent_run_id: str, model: str) -> dict[str, Any]:
    """Search, fit, evaluate and log one model as a nested run of ``parent_run_id``."""
    from mlflow.models import infer_signature

    check_kind(model)
    mlflow = _mlflow(settings)
    parent, config, prepared = _prepare_for_parent(settings, parent_run_id)
    cols = prepared.columns.all
    x_train, y_train = prepared.train[cols], prepared.train["label"].to_numpy()
    x_test, y_test = prepared.test[cols], prepared.test["label"].to_numpy()
    fitted = fit_with_search(model, x_train, y_train, prepared.columns, config.budget)
    # Threshold and selection: out-of-fold scores of the training rows only.
    threshold, cv_cost = cost_optimal_threshold(
        fitted.validation_y, fitted.validation_p, config.costs
    )
    # The test rows are used once, here, to report.
    started = time.perf_counter()
    p_test = fitted.pipeline.predict_proba(x_test)[:, 1]
    predict_seconds = time.perf_counter() - started
    metrics = evaluate(y_test, p_test, threshold, config.costs)
    _, auc_low, auc_high = auc_ci(y_test, p_test)
    metrics["roc_auc_ci_low"], metrics["roc_auc_ci_high"] = auc_low, auc_high
    metrics["cv_roc_auc"] = fitted.extra["cv_roc_auc"]
    metrics["cv_expected_cost"] = cv_cost
    metrics.update(_oracle_metrics(settings, prepared.test, p_test))
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["predict_seconds"] = predict_seconds
    metrics["search_trials"] = float(len(fitted.trials))
    metrics["search_stopped_by_time"] = float(fitted.stopped_by == "time")
    fairness = fairness_report(prepared.test, p_test, threshold, prepared.inputs.protected)
    lowest_air = min_air(fairness)
    if lowest_air is not None:
        metrics["fairness_min_air"] = lowest_air
    title = modelkinds.get(model).label
    with mlflow.start_run(
        experiment_id=parent.info.experiment_id,
        run_name=title,
        parent_run_id=parent_run_id,
        nested=True,
        tags={names.TAG_MODEL_TYPE: model, names.TAG_FEATURES_DIGEST: prepared.table.digest},
    ) as run:
        mlflow.log_params({f"best_{k}": v for k, v in fitted.best_params.items()})
        mlflow.log_params(
            {
                "search_stopped_by": fitted.stopped_by,
                "search_budget_seconds": config.budget_seconds,
                "search_max_trials": config.max_trials,
                "scale_pos_weight": round(fitted.extra["pos_weight"], 4),
                "calibration": f"sigmoid on {config.cv_folds}-fold out-of-fold scores",
                "threshold_chosen_on": "out-of-fold scores of the training rows",
                "refit_rows": fitted.extra["fit_rows"],
            }
        )
        mlflow.log_dict(prepared.features_document(config), names.FEATURES_ARTIFACT)
        mlflow.log_dict(fairness, names.FAIRNESS_ARTIFACT)
        mlflow.log_metrics(metrics)
        for step, trial in enumerate(fitted.trials):
            mlflow.log_metric("search_validation_auc", trial.validation_auc, step=step)
        mlflow.log_dict([dataclasses.asdict(t) for t in fitted.trials], "search/trials.json")
        importance = feature_importance(fitted.pipeline)
        mlflow.log_figure(
            plots.roc_figure(y_test, p_test, title, metrics["roc_auc"]), "plots/roc.png"
        )
        mlflow.log_figure(
            plots.calibration_figure(y_test, p_test, title, metrics["ece"]), "plots/calibration.png"
        )
        mlflow.log_figure(
            plots.cost_figure(y_test, p_test, config.costs, threshold, title),
            "plots/cost_by_threshold.png",
        )
        mlflow.log_figure(
            plots.importance_figure(importance, title), "plots/feature_importance.png"
        )
        mlflow.log_dict(
            {k: float(v) for k, v in importance.head(50).items()}, "plots/feature_importance.json"
        )
        p_train = fitted.pipeline.predict_proba(x_train)[:, 1]
        mlflow.log_dict(
            build_baseline(p_train, x_train, prepared.columns.numeric), names.BASELINE_ARTIFACT
        )
        log_dataset_inputs(prepared.table, prepared.train, prepared.test)
        example = x_train.head(5)
        signature = infer_signature(example, fitted.pipeline.predict_proba(example)[:, 1])
        info = mlflow.sklearn.log_model(
            fitted.pipeline,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format="cloudpickle",  # skops cannot hold XGBoost's booster
            pip_requirements=_pip_requirements(),  # skips slow requirement inference
        )
        mlflow.set_tag("model_uri", info.model_uri)
        run_id = str(run.info.run_id)
    client = _client(settings)
    for key in ("roc_auc", "ks", "expected_cost"):
        client.log_metric(parent_run_id, f"{model}_{key}", metrics[key])
    logger.info(
        "%s: ROC-AUC %.4f, KS %.4f, cost %.4f at %.3f (run %s)",
        model,
        metrics["roc_auc"],
        metrics["ks"],
        metrics["expected_cost"],
        threshold,
        run_id,
    )
    return {"model": model, "run_id": run_id, "model_uri": info.model_uri, **metrics}


# ---- step 3: choose, register, decide ------------------------------------------------------
def child_runs(settings: Settings, parent_run_id: str) -> list[Any]:
    client = _client(settings)
    parent = client.get_run(parent_run_id)
    return list(
        client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        )
    )


def _champion(settings: Settings) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return _client(settings).get_model_version_by_alias(
            settings.registered_model_name, CHAMPION
        )
    except MlflowException:
        return None


def _predict_version(settings: Settings, version: str, test: pd.DataFrame) -> np.ndarray:
    """A registered version's probabilities of default on ``test`` (its own feature list)."""
    mlflow = _mlflow(settings)
    model = mlflow.sklearn.load_model(f"models:/{settings.registered_model_name}/{version}")
    wanted = list(getattr(model, "feature_names_in_", [])) or list(test.columns)
    missing = [c for c in wanted if c not in test.columns]
    if missing:
        raise TrainingError(f"the test rows lack the champion's features {missing[:5]}")
    return np.asarray(model.predict_proba(test[wanted])[:, 1], dtype=float)


def _already_registered(settings: Settings, parent_run_id: str) -> dict[str, Any] | None:
    client = _client(settings)
    version = client.get_run(parent_run_id).data.tags.get("registered_version")
    if not version:
        return None
    tags = client.get_model_version(settings.registered_model_name, version).tags
    logger.info(
        "training run %s already registered v%s; not registering again", parent_run_id, version
    )
    return {
        "promote": tags.get("promote") == "true",
        "reason": tags.get(names.TAG_DECISION_REASON, ""),
        "decision": tags.get("decision", ""),
        "version": str(version),
        "model": tags.get(names.TAG_MODEL_TYPE),
        "run_id": tags.get("run_id"),
        "roc_auc": float(tags.get("roc_auc", "nan")),
        "champion_version": None,
        "champion_roc_auc": None,
    }


def _obs_dates(split: Mapping[str, object]) -> list[str]:
    """Every observation date of the split description (one list, or train and test lists)."""
    dates: set[str] = set()
    for key in ("obs_dates", "train_obs_dates", "test_obs_dates"):
        value = split.get(key)
        if isinstance(value, list | tuple):
            dates.update(str(d) for d in value)
    return sorted(dates)


def _join_tag(values: Sequence[str], limit: int = 4800) -> str:
    text = ",".join(values)
    return text if len(text) <= limit else f"{len(values)} columns: see features.json"


def _select_best(runs: list[Any], select_by: str) -> Any:
    """The execution's best model on out-of-fold training scores (never the test rows);
    ties: the higher out-of-fold AUC, then the model type's name."""

    def cv(r: Any, key: str, fallback: str) -> float:
        return float(r.data.metrics.get(key, r.data.metrics[fallback]))

    if select_by == "roc_auc":
        return min(
            runs, key=lambda r: (-cv(r, "cv_roc_auc", "roc_auc"), r.data.tags[names.TAG_MODEL_TYPE])
        )
    return min(
        runs,
        key=lambda r: (
            round(cv(r, "cv_expected_cost", "expected_cost"), 12),
            -cv(r, "cv_roc_auc", "roc_auc"),
            r.data.tags[names.TAG_MODEL_TYPE],
        ),
    )


def _compare_with_champion(
    settings: Settings, test_rows: pd.DataFrame, y_test: np.ndarray, p_challenger: np.ndarray
) -> tuple[Any | None, Any | None, str | None]:
    """The champion (if any), DeLong's paired test of the challenger against it on the same test
    rows, and why it could not be evaluated (a schema change, a broken artifact), if so."""
    champion = _champion(settings)
    if champion is None:
        return None, None, None
    try:
        p_champion = _predict_version(settings, str(champion.version), test_rows)
        return champion, paired_test(y_test, p_challenger, p_champion), None
    except Exception as exc:  # record why; the decision rule blocks promotion on it
        error = f"{type(exc).__name__}: {exc}"[:300]
        logger.warning("cannot evaluate champion v%s: %s", champion.version, error)
        return champion, None, error


def version_tags(
    m: Mapping[str, float],
    kind: str,
    decision: Decision,
    config: TrainingConfig,
    prepared: Prepared,
    run_id: str,
    parent_run_id: str,
    champion: Any | None,
    test: Any | None,
) -> dict[str, str]:
    """The registered version's tags: metrics, the decision, its inputs and what was left out."""
    return {
        names.TAG_MODEL_TYPE: kind,
        names.TAG_PORTFOLIO: prepared.portfolio,
        names.TAG_THRESHOLD: f"{m['threshold']:.6f}",
        names.TAG_ROC_AUC: f"{m['roc_auc']:.6f}",
        "roc_auc_ci95": f"{m.get('roc_auc_ci_low', float('nan')):.4f}-"
        f"{m.get('roc_auc_ci_high', float('nan')):.4f}",
        "cv_roc_auc": f"{m.get('cv_roc_auc', float('nan')):.6f}",
        names.TAG_KS: f"{m['ks']:.6f}",
        "ece": f"{m['ece']:.6f}",
        "expected_cost": f"{m['expected_cost']:.6f}",
        **decision.tags(),
        "promote_override": str(config.promote_override).lower(),
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        names.TAG_FEATURES_DIGEST: prepared.table.digest,
        names.TAG_FEATURES: _join_tag(prepared.columns.all),
        "features_artifact": names.FEATURES_ARTIFACT,
        "protected_attributes": _join_tag(config.inputs.protected),
        "protected_present_not_inputs": _join_tag(prepared.inputs.protected),
        "identifiers_not_inputs": _join_tag(prepared.inputs.identifiers),
        "allow_age": str(config.allow_age).lower(),
        "lookback_months": str(config.lookback_months or "unknown"),
        "performance_months": str(config.performance_months or "unknown"),
        "obs_dates": _join_tag(_obs_dates(prepared.split_description)),
        names.TAG_FAIRNESS_ARTIFACT: names.FAIRNESS_ARTIFACT,
        "fairness_min_air": f"{m['fairness_min_air']:.4f}" if "fairness_min_air" in m else "",
        names.TAG_MODEL_CARD_ARTIFACT: names.MODEL_CARD_ARTIFACT,
        "champion_version_compared": "" if champion is None else str(champion.version),
        "champion_roc_auc_same_test": "" if test is None else f"{test.auc_b:.6f}",
    }


def comparison_rows(runs: list[Any]) -> list[dict[str, Any]]:
    """One row per model of the execution, best test ROC-AUC first (logged as comparison.json)."""
    return [
        {
            "model": r.data.tags.get(names.TAG_MODEL_TYPE),
            "run_id": r.info.run_id,
            **{
                k: r.data.metrics.get(k)
                for k in (
                    "cv_roc_auc",
                    "cv_expected_cost",
                    "roc_auc",
                    "roc_auc_ci_low",
                    "roc_auc_ci_high",
                    "ks",
                    "gini",
                    "pr_auc",
                    "brier",
                    "log_loss",
                    "ece",
                    "threshold",
                    "expected_cost",
                    "fit_seconds",
                    "oracle_roc_auc",
                )
            },
        }
        for r in sorted(runs, key=lambda r: -r.data.metrics["roc_auc"])
    ]


def evaluation_result(
    decision: Decision,
    version: str,
    kind: str,
    run_id: str,
    m: Mapping[str, float],
    champion: Any | None,
    test: Any | None,
) -> dict[str, Any]:
    """What the evaluate step returns to the pipeline (the Choice reads ``promote``)."""
    return {
        "promote": decision.promote,
        "reason": decision.reason,
        "decision": decision.outcome,
        "version": version,
        "model": kind,
        "run_id": run_id,
        "roc_auc": m["roc_auc"],
        "champion_version": None if champion is None else str(champion.version),
        "champion_roc_auc": None if test is None else test.auc_b,
        "p_value": None if test is None else test.p_one_sided,
    }


def evaluate_and_register(settings: Settings, parent_run_id: str) -> dict[str, Any]:
    """Pick the execution's best model (on out-of-fold training scores), register it as
    ``challenger``, compare it with the champion on the same test rows (DeLong's paired test)
    and decide on promotion (recorded as version tags, with the model card). Does not move
    ``champion``: see :func:`promote`."""
    mlflow = _mlflow(settings)
    client = _client(settings)
    already = _already_registered(settings, parent_run_id)
    if already is not None:  # a retried task: do not register a second version
        return already
    parent, config, prepared = _prepare_for_parent(settings, parent_run_id)
    runs = [r for r in child_runs(settings, parent_run_id) if "roc_auc" in r.data.metrics]
    if not runs:
        raise TrainingError(
            f"training run {parent_run_id} has no finished model runs; train a model first"
        )
    best = _select_best(runs, config.select_by)
    m = best.data.metrics
    kind = best.data.tags[names.TAG_MODEL_TYPE]
    challenger_model = mlflow.sklearn.load_model(best.data.tags["model_uri"])
    p_challenger = challenger_model.predict_proba(prepared.test[prepared.columns.all])[:, 1]
    y_test = prepared.test["label"].to_numpy()
    champion, test, champion_error = _compare_with_champion(
        settings, prepared.test, y_test, p_challenger
    )
    decision: Decision = decide(
        m,
        config.policy,
        champion_version=None if champion is None else str(champion.version),
        test=test,
        champion_error=champion_error,
    )
    name = settings.registered_model_name
    version = mlflow.register_model(
        best.data.tags["model_uri"],
        name,
        tags=version_tags(
            m, kind, decision, config, prepared, best.info.run_id, parent_run_id, champion, test
        ),
    )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    fairness = json.loads(
        Path(client.download_artifacts(best.info.run_id, names.FAIRNESS_ARTIFACT)).read_text()
    )
    card = model_card(
        name=name,
        version=str(version.version),
        kind=kind,
        config=config.to_params(),
        parent=parent,
        best=best,
        split=prepared.split_description,
        features=prepared.features_document(config),
        fairness=fairness,
        decision=decision,
        test_rows=len(prepared.test),
    )
    client.log_text(best.info.run_id, card, names.MODEL_CARD_ARTIFACT)
    comparison = comparison_rows(runs)
    client.log_dict(
        parent_run_id,
        {
            "models": comparison,
            "best": kind,
            "selected_on": f"out-of-fold {config.select_by} of the training rows",
            "decision": decision.reason,
            "decision_tags": decision.tags(),
        },
        "comparison.json",
    )
    client.set_tag(parent_run_id, "best_model", kind)
    client.set_tag(parent_run_id, "registered_version", str(version.version))
    client.set_tag(parent_run_id, names.TAG_DECISION_REASON, decision.reason[:4900])
    client.set_tag(parent_run_id, "decision", decision.outcome)
    if test is not None:
        client.log_metric(parent_run_id, "champion_roc_auc_same_test", test.auc_b)
        client.log_metric(parent_run_id, "delong_p_one_sided", test.p_one_sided)
    client.set_terminated(parent_run_id, status="FINISHED")
    logger.info("v%s (%s) registered as challenger; %s", version.version, kind, decision.reason)
    return evaluation_result(
        decision, str(version.version), kind, best.info.run_id, m, champion, test
    )


# ---- step 4: promotion ---------------------------------------------------------------------
def promote(settings: Settings, version: str) -> dict[str, Any]:
    """Point the ``champion`` alias at ``version``; record when and what it replaced."""
    client = _client(settings)
    name = settings.registered_model_name
    previous = _champion(settings)
    client.get_model_version(name, str(version))  # fails clearly if there is no such version
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_model_version_tag(
        name,
        str(version),
        names.TAG_PROMOTED_AT,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    if previous is not None and str(previous.version) != str(version):
        client.set_model_version_tag(
            name, str(previous.version), names.TAG_REPLACED_BY, str(version)
        )
    logger.info("%s v%s is now champion", name, version)
    return {
        "version": str(version),
        "alias": CHAMPION,
        "previous": None if previous is None else str(previous.version),
    }


# ---- the whole execution -------------------------------------------------------------------
def run_training(
    settings: Settings,
    config: TrainingConfig | None = None,
    features_uri: str | None = None,
    models: Sequence[str] | None = None,
) -> TrainingReport:
    """start -> each model in turn -> evaluate and register -> promote when the rule says so."""
    config = config or TrainingConfig()
    if models is not None:
        config = dataclasses.replace(config, models=tuple(models))
    parent_run_id = start_training(settings, features_uri, config)
    results = []
    try:
        for kind in config.models:
            results.append(train_model(settings, parent_run_id, kind))
        decision = evaluate_and_register(settings, parent_run_id)
    except Exception:
        _client(settings).set_terminated(parent_run_id, status="FAILED")
        raise
    if decision["promote"]:
        decision["promotion"] = promote(settings, decision["version"])
    parent = _client(settings).get_run(parent_run_id)
    return TrainingReport(
        parent_run_id,
        run_url(settings, parent.info.experiment_id, parent_run_id),
        results,
        decision,
    )
