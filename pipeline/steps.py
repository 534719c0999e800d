"""The pipeline's steps as Airflow (or Step Functions) runs them: one adapter per ASL Task.

Each adapter takes the settings and a :class:`StepContext` (DAG params, run date, the results of
earlier steps) and calls exactly one function of our packages, importing it inside, so that
parsing a DAG stays cheap. Results are small dicts of counts and S3 paths, never data.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import modelkinds
from riskstream import names
from riskstream.names import PIPELINE_DEFAULTS
from riskstream.settings import Settings
from riskstream.storage import split_s3

logger = logging.getLogger(__name__)

StepFunction = Callable[[Settings, "StepContext"], dict[str, Any]]


def default_params() -> dict[str, Any]:
    """The pipeline's params with their defaults: the foundation's, and every registered model
    kind as the default model set."""
    return {**PIPELINE_DEFAULTS, "models": modelkinds.default_models()}


class StepSkipped(Exception):
    """The step has nothing to do for this run (e.g. a model not in the chosen set)."""


@dataclass(frozen=True)
class StepContext:
    """What a step knows about its run."""

    run_id: str
    run_date: str  # YYYY-MM-DD, the logical date of the run
    params: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        return self.params.get(name, default_params().get(name))

    def portfolio(self) -> str:
        """The run's portfolio (ingestion.tasks.portfolio_for): every step below ingestion reads
        and writes that portfolio's features, model, champion and scores only."""
        from ingestion.tasks import portfolio_for

        return portfolio_for(
            str(self.param("source")),
            portfolio=self.param("portfolio") or None,
            path=self.param("csv_path") or None,
            mapping=self.param("csv_mapping") or None,
        )

    def windows(self) -> dict[str, Any]:
        """The observation date and windows a CSV mapping sets (empty for other sources)."""
        if self.param("source") != names.SOURCE_CSV or not self.param("csv_mapping"):
            return {}
        from ingestion.tasks import mapping_windows

        return mapping_windows(self.param("csv_mapping"))


def produce_events(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from ingestion.tasks import produce

    source = ctx.param("source")
    params: dict[str, Any] = {"portfolio": ctx.portfolio()}
    if source == names.SOURCE_SYNTHETIC:
        params |= {
            "accounts": int(ctx.param("accounts")),
            "months": int(ctx.param("months")),
            "seed": int(ctx.param("seed")),
        }
    elif source == names.SOURCE_TAIWAN and ctx.param("taiwan_path"):
        params |= {"path": ctx.param("taiwan_path")}
    elif source == names.SOURCE_CSV:
        params |= {"path": ctx.param("csv_path"), "mapping": ctx.param("csv_mapping")}
    return dict(produce(settings, source, **params))


def land_events(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from ingestion.tasks import land

    produced = ctx.results.get("ProduceEvents") or {}
    sent = produced.get("sent") if isinstance(produced, dict) else None
    # this run's events are about what there is to land (the progress's total)
    return dict(land(settings, expected=int(sent) if sent else None))


def raw_to_curated(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from etl.tasks import raw_to_curated as job

    return dict(job(settings, ctx.run_date, reset=bool(ctx.param("reset_bookmarks"))))


def compact_curated(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from etl.tasks import compact

    return dict(compact(settings))


def feature_lookback(source: str, months: int) -> int | None:
    """The features' lookback for a run: a synthetic portfolio's panel lookback
    (:func:`riskstream.names.synthetic_windows`), the job's default (None) for other sources."""
    if source != names.SOURCE_SYNTHETIC:
        return None
    return names.synthetic_windows(months)[0]


def feature_performance(source: str, months: int) -> int | None:
    """The label's window for a run: 12 months for a synthetic portfolio long enough to hold it
    (:func:`riskstream.names.synthetic_windows`), the job's default (None) for other sources
    (Taiwan's published definition is one month)."""
    if source != names.SOURCE_SYNTHETIC:
        return None
    return names.synthetic_windows(months)[1]


def curated_to_features(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    """The run's portfolio's features, at the mapping's observation date and windows when a
    CSV mapping sets them (else derived from the portfolio's own data)."""
    from etl.tasks import curated_to_features as job

    windows = ctx.windows()
    lookback = windows.get("lookback_months") or feature_lookback(
        str(ctx.param("source")), int(ctx.param("months"))
    )
    obs = windows.get("obs_dates")
    return dict(
        job(
            settings.for_portfolio(ctx.portfolio()),
            ctx.run_date,
            obs_dates=[obs] if obs else None,
            lookback_months=lookback,
            performance_months=windows.get("performance_months")
            or feature_performance(str(ctx.param("source")), int(ctx.param("months"))),
        )
    )


def _chosen_models(ctx: StepContext) -> list[str]:
    return list(modelkinds.parse_models(str(ctx.param("models"))))


def start_training(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from training.config import TrainingConfig
    from training.train import start_training as start

    settings = settings.for_portfolio(ctx.portfolio())
    features = ctx.results.get("CuratedToFeatures") or {}
    uri = features.get("target") or names.features_location(settings) + "/"
    config = TrainingConfig(
        models=tuple(_chosen_models(ctx)),
        budget_seconds=float(ctx.param("train_budget_seconds")),
        max_trials=int(ctx.param("max_trials")),
        min_ks=float(ctx.param("min_ks")),
        max_ece=float(ctx.param("max_ece")),
        promote_override=bool(ctx.param("promote_override")),
        # recorded with the model (params, version tags, model card); 0 = not known
        lookback_months=int(features.get("lookback_months") or 0),
        performance_months=int(features.get("performance_months") or 0),
    )
    return {"parent_run_id": start(settings, uri, config), names.TAG_FEATURES_URI: uri}


def _train(settings: Settings, ctx: StepContext, model: str) -> dict[str, Any]:
    if model not in _chosen_models(ctx):
        raise StepSkipped(f"model {model!r} not in models={ctx.param('models')!r}")
    # after the choice: a kind the run skips does not import the training stack (MLflow,
    # scikit-learn, XGBoost); under Step Functions each step is a process of its own
    from training.train import train_model

    parent = ctx.results["StartTraining"]["parent_run_id"]
    return dict(train_model(settings.for_portfolio(ctx.portfolio()), parent, model))


def train_step_name(kind: str) -> str:
    """The step that trains ``kind`` (the ASL's template branch names it ``train_{kind}``)."""
    return f"train_{kind}"


@functools.cache
def train_step(kind: str) -> StepFunction:
    """The step that trains one model kind, if the run's ``models`` chose it."""

    def train(settings: Settings, ctx: StepContext) -> dict[str, Any]:
        return _train(settings, ctx, kind)

    train.__name__ = train.__qualname__ = train_step_name(kind)
    return train


def evaluate_and_register(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from training.train import evaluate_and_register as evaluate

    scoped = settings.for_portfolio(ctx.portfolio())
    return dict(evaluate(scoped, ctx.results["StartTraining"]["parent_run_id"]))


def promote_champion(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from training.registry_io import promote

    scoped = settings.for_portfolio(ctx.portfolio())
    return dict(promote(scoped, ctx.results["EvaluateAndRegister"]["version"]))


def score_portfolio(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    from serving.tasks import score

    return dict(score(settings.for_portfolio(ctx.portfolio()), ctx.run_date))


def handle_failure(settings: Settings, ctx: StepContext) -> dict[str, Any]:
    """Collect the failure records the failed steps left, log them, and save a summary."""
    from riskstream.clients import make_client

    s3 = make_client(settings, "s3")
    bucket, prefix = split_s3(names.pipeline_run_location(settings, ctx.run_id, "failures") + "/")
    failures = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            failures.append(json.loads(body))
    for failure in failures:
        logger.error(
            "step %s failed after %s attempt(s): %s",
            failure["step"],
            failure["try_number"],
            failure["error"],
        )
    summary = {
        "run_id": ctx.run_id,
        "failed_steps": [f["step"] for f in failures],
        "failures": failures,
    }
    bucket, key = split_s3(
        names.pipeline_run_location(settings, ctx.run_id, "failure-summary.json")
    )
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(summary, indent=2).encode())
    return summary


class _Steps(Mapping[str, StepFunction]):
    """The fixed steps and one ``train_<kind>`` step per registered model kind, read when asked
    (so a kind added to modelkinds/ has its step without an edit here)."""

    def __init__(self, fixed: tuple[StepFunction, ...]) -> None:
        self._fixed = {f.__name__: f for f in fixed}

    def _all(self) -> dict[str, StepFunction]:
        trains = {train_step_name(k): train_step(k) for k in modelkinds.names()}
        return {**self._fixed, **trains}

    def __getitem__(self, name: str) -> StepFunction:
        if name in self._fixed:
            return self._fixed[name]
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


STEPS: Mapping[str, StepFunction] = _Steps(
    (
        produce_events,
        land_events,
        raw_to_curated,
        compact_curated,
        curated_to_features,
        start_training,
        evaluate_and_register,
        promote_champion,
        score_portfolio,
        handle_failure,
    )
)
"""Every step an ASL Task may name (``Parameters...step``), by name."""


def record_failure(
    settings: Settings, ctx: StepContext, state: str, try_number: int, error: BaseException
) -> None:
    """Leave a note where handle_failure will find it (best effort: never masks the error)."""
    try:
        from riskstream.clients import make_client

        bucket, key = split_s3(_failure_note(settings, ctx, state))
        make_client(settings, "s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(
                {
                    "step": state,
                    "try_number": try_number,
                    "error": f"{type(error).__name__}: {error}",
                }
            ).encode(),
        )
    except Exception:
        logger.warning("could not record the failure of %s", state, exc_info=True)


def clear_failure(settings: Settings, ctx: StepContext, state: str) -> None:
    """A retried step that finally succeeded leaves no failure note behind."""
    try:
        from riskstream.clients import make_client

        bucket, key = split_s3(_failure_note(settings, ctx, state))
        make_client(settings, "s3").delete_object(Bucket=bucket, Key=key)
    except Exception:
        logger.debug("no failure note to clear for %s", state)


def _failure_note(settings: Settings, ctx: StepContext, state: str) -> str:
    return names.pipeline_run_location(settings, ctx.run_id, "failures", f"{state}.json")
