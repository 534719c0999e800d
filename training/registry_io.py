"""The model registry side of training: child runs, the champion, version tags, the comparison
of models and the alias moves (I/O module: MLflow)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskstream import names
from riskstream.names import (
    CHAMPION_ALIAS,
)
from riskstream.settings import Settings
from training.config import TrainingConfig, TrainingError
from training.delong import paired_test
from training.prepare import Prepared
from training.promotion import Decision
from training.tracking import _client, _mlflow

logger = logging.getLogger(__name__)

CHAMPION = CHAMPION_ALIAS


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
    serving: Any | None = None,
) -> dict[str, str]:
    """The registered version's tags: metrics, the decision, its inputs and what was left out,
    and its serving cost (a :class:`training.serving_cost.ServingCost`) when measured."""
    cost = (
        {}
        if serving is None
        else {
            names.TAG_SERVING_P99_MS: f"{serving.p99_ms:.4f}",
            "serving_p50_ms": f"{serving.p50_ms:.4f}",
            names.TAG_SERVING_BUDGET_MS: f"{config.serving_budget_ms:g}",
            "reason_method": serving.reason_method,
        }
    )
    return {
        **cost,
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
