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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import modelkinds
from riskstream import names
from riskstream.names import (
    CHALLENGER_ALIAS,
)
from riskstream.progress import Progress
from riskstream.settings import Settings
from training import plots, serving_cost
from training.baseline import build_baseline
from training.config import TrainingConfig, TrainingError, TrainingReport
from training.data import (
    default_features_uri,
    log_dataset_inputs,
    read_oracle,
)
from training.delong import auc_ci
from training.fairness import fairness_report, min_air
from training.metrics import cost_optimal_threshold, evaluate
from training.modelcard import model_card
from training.models import (
    check_kind,
    feature_importance,
    fit_with_search,
    kind_report,
)
from training.prepare import Prepared, _prepare_for_parent, prepare
from training.promotion import Decision, decide
from training.registry_io import (
    _already_registered,
    _compare_with_champion,
    _select_best,
    child_runs,
    comparison_rows,
    evaluation_result,
    promote,
    version_tags,
)
from training.spark_fit import where_to_fit
from training.tracking import _client, _mlflow, ensure_experiment, model_requirements, run_url

logger = logging.getLogger(__name__)


CHALLENGER = CHALLENGER_ALIAS


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
    return oracle_metrics(oracle, test, p)


def oracle_metrics(oracle: pd.DataFrame, test: pd.DataFrame, p: np.ndarray) -> dict[str, float]:
    """The oracle's AUCs on the test rows it covers: per account and observation date when it
    has an ``obs_date`` column (a synthetic panel: the PD over the window from that date), else per
    account (its last row)."""
    oracle = oracle.copy()
    oracle["account_id"] = oracle["account_id"].astype(str)
    keys = ["account_id"]
    if names.OBS_DATE in oracle.columns:
        keys.append(names.OBS_DATE)
        oracle[names.OBS_DATE] = pd.to_datetime(oracle[names.OBS_DATE])
    elif "observed_date" in oracle.columns and oracle["account_id"].duplicated().any():
        oracle = oracle.sort_values("observed_date").drop_duplicates("account_id", keep="last")
    wanted = [*keys, "true_pd", *(["attainable_pd"] if "attainable_pd" in oracle else [])]
    rows = test[["account_id", names.OBS_DATE, "label"]].assign(p=p)
    rows["account_id"] = rows["account_id"].astype(str)
    rows[names.OBS_DATE] = pd.to_datetime(rows[names.OBS_DATE])
    merged = rows.merge(oracle[wanted].drop_duplicates(keys), on=keys)
    if merged.empty or merged["label"].nunique() < 2:
        logger.warning("oracle true_pd matches %d test rows: no oracle AUC", len(merged))
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


def auc_by_obs_date(parts: dict[str, tuple[pd.DataFrame, np.ndarray]]) -> dict[str, Any]:
    """ROC-AUC, rows and default rate per observation date of each part (``in_time``,
    ``out_of_time``...): how the model ages. A date with one class has no AUC (None)."""
    out: dict[str, Any] = {}
    for part, (frame, p) in parts.items():
        rows = []
        if len(frame):
            days = pd.to_datetime(frame[names.OBS_DATE]).dt.date.astype(str).to_numpy()
            y = frame["label"].to_numpy()
            for day in sorted(set(days)):
                mask = days == day
                both = len(np.unique(y[mask])) == 2
                rows.append(
                    {
                        names.OBS_DATE: day,
                        "rows": int(mask.sum()),
                        "default_rate": round(float(y[mask].mean()), 6),
                        "roc_auc": float(roc_auc_score(y[mask], p[mask])) if both else None,
                    }
                )
        out[part] = rows
    return out


def _in_time_metrics(
    prepared: Prepared, pipeline: Any, threshold: float, config: TrainingConfig
) -> tuple[dict[str, float], np.ndarray]:
    """The in-time check: the test accounts' rows at the training dates (none for a random
    split)."""
    frame = prepared.in_time
    if frame is None or frame.empty or frame["label"].nunique() < 2:
        return {}, np.zeros(0)
    p = pipeline.predict_proba(frame[prepared.columns.all])[:, 1]
    found = evaluate(frame["label"].to_numpy(), p, threshold, config.costs)
    metrics = {f"in_time_{k}": found[k] for k in ("roc_auc", "ks", "brier", "ece") if k in found}
    metrics["in_time_rows"] = float(len(frame))
    return metrics, p


def train_model(settings: Settings, parent_run_id: str, model: str) -> dict[str, Any]:
    """Search, fit, evaluate and log one model as a nested run of ``parent_run_id``; its
    progress (the fits: trials, folds, refit) in the log and for `riskstream run`."""
    check_kind(model)
    with Progress.in_state_dir(settings.state_dir, f"train {model}", None, "fits") as progress:
        return _train_model(settings, parent_run_id, model, progress)


def _train_model(
    settings: Settings, parent_run_id: str, model: str, progress: Progress
) -> dict[str, Any]:
    from mlflow.models import infer_signature

    mlflow = _mlflow(settings)
    parent, config, prepared = _prepare_for_parent(settings, parent_run_id)
    cols = prepared.columns.all
    x_train, y_train = prepared.train[cols], prepared.train["label"].to_numpy()
    x_test, y_test = prepared.test[cols], prepared.test["label"].to_numpy()
    accounts = prepared.train["account_id"].astype(str).to_numpy()
    # a panel (an account on several dates): folds keep an account's rows together
    groups = accounts if len(np.unique(accounts)) < len(accounts) else None
    # Past one machine (a large table, a cluster master, a kind that can): the fits on Spark.
    # a large table: the search on a sample of whole accounts, the refit on every row
    budget = dataclasses.replace(config.budget, search_rows=settings.training_search_rows)
    with where_to_fit(settings, model, len(x_train)) as refit:
        fitted = fit_with_search(
            model,
            x_train,
            y_train,
            prepared.columns,
            budget,
            refit=refit,
            groups=groups,
            progress=progress,
        )
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
    in_time, p_in_time = _in_time_metrics(prepared, fitted.pipeline, threshold, config)
    metrics.update(in_time)
    by_date = auc_by_obs_date(
        {
            "in_time": (prepared.in_time if in_time else prepared.test.iloc[:0], p_in_time),
            "test": (prepared.test, p_test),
        }
    )
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["predict_seconds"] = predict_seconds
    metrics["search_trials"] = float(len(fitted.trials))
    metrics["search_seconds"] = float(fitted.extra["search_seconds"])
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
        tags={
            names.TAG_MODEL_TYPE: model,
            names.TAG_FEATURES_DIGEST: prepared.table.digest,
            names.TAG_FIT_ENGINE: fitted.extra["fit_engine"],
        },
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
                "search_rows": fitted.extra["search_rows"],
                "search_rows_limit": settings.training_search_rows,
                **fitted.extra["fit_where"],
            }
        )
        mlflow.log_dict(prepared.features_document(config), names.FEATURES_ARTIFACT)
        mlflow.log_dict(fairness, names.FAIRNESS_ARTIFACT)
        mlflow.log_dict(by_date, names.AUC_BY_OBS_DATE_ARTIFACT)
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
            build_baseline(
                p_train, x_train, prepared.columns.numeric, prepared.columns.categorical
            ),
            names.BASELINE_ARTIFACT,
        )
        report = kind_report(model, fitted.pipeline, settings.score_scale)
        if report is not None:
            for file_name, text in report.artifacts.items():
                mlflow.log_text(text, f"{names.KIND_REPORT_DIR}/{file_name}")
            if report.card:
                mlflow.log_text(report.card, names.KIND_CARD_ARTIFACT)
        log_dataset_inputs(prepared.table, prepared.train, prepared.test)
        example = x_train.head(5)
        signature = infer_signature(example, fitted.pipeline.predict_proba(example)[:, 1])
        info = mlflow.sklearn.log_model(
            fitted.pipeline,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format="cloudpickle",  # skops cannot hold XGBoost's booster
            pip_requirements=model_requirements(),  # skips slow requirement inference
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
    cost = serving_cost.measure(challenger_model, prepared.test[prepared.columns.all])
    logger.info("%s serving cost: %s", kind, cost.describe())
    decision: Decision = decide(
        m,
        config.policy,
        champion_version=None if champion is None else str(champion.version),
        test=test,
        champion_error=champion_error,
        serving_p99_ms=cost.p99_ms,
    )
    name = settings.registered_model_name
    version = mlflow.register_model(
        best.data.tags["model_uri"],
        name,
        tags=version_tags(
            m,
            kind,
            decision,
            config,
            prepared,
            best.info.run_id,
            parent_run_id,
            champion,
            test,
            serving=cost,
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
        kind_section=_kind_card(client, best.info.run_id),
        by_date=_artifact_json(client, best.info.run_id, names.AUC_BY_OBS_DATE_ARTIFACT),
        serving=cost.describe(),
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


def _kind_card(client: Any, run_id: str) -> str:
    """The model-card section the run's model kind published (``""`` when none did)."""
    published = {a.path for a in client.list_artifacts(run_id, names.KIND_REPORT_DIR)}
    if names.KIND_CARD_ARTIFACT not in published:
        return ""
    return Path(client.download_artifacts(run_id, names.KIND_CARD_ARTIFACT)).read_text()


def _artifact_json(client: Any, run_id: str, path: str) -> dict[str, Any]:
    """A JSON artifact of a run, or ``{}`` when the run did not log it (an older run)."""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    if path not in {a.path for a in client.list_artifacts(run_id, folder or None)}:
        return {}
    return dict(json.loads(Path(client.download_artifacts(run_id, path)).read_text()))


# ---- step 4: promotion ---------------------------------------------------------------------


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
