"""Training configuration: what an execution runs with, recorded as the parent run's params
and read back by every step (pure values, no I/O)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import modelkinds
from riskstream.names import (
    DEFAULT_MAX_ECE,
    DEFAULT_MAX_TRIALS,
    DEFAULT_MIN_KS,
    DEFAULT_SPLIT,
    DEFAULT_TRAIN_BUDGET_SECONDS,
    SPLIT_STRATEGIES,
)
from riskstream.settings import DEFAULT_SERVING_BUDGET_MS, Settings
from training.lawful import InputPolicy
from training.metrics import CostMatrix
from training.models import (
    ModelError,
    SearchBudget,
    check_kind,
)
from training.promotion import PromotionPolicy

logger = logging.getLogger(__name__)


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
    # how test rows are held out (names.SPLIT_STRATEGIES): the latest observation dates by default
    split: str = DEFAULT_SPLIT
    cost_fn: float = 10.0  # a missed defaulter
    cost_fp: float = 1.0  # a wrongly rejected good customer
    alpha: float = 0.05  # one-sided level of DeLong's paired test against the champion
    min_ks: float = DEFAULT_MIN_KS
    max_ece: float = DEFAULT_MAX_ECE
    # How the execution's best model is chosen, on out-of-fold scores of the training rows:
    select_by: str = "expected_cost"  # or "roc_auc"
    # promote even when the champion cannot be evaluated or the challenger is over the budget
    promote_override: bool = False
    # the compiled scorer's single-row p99 (ms) a challenger must meet (Settings; 0: none)
    serving_budget_ms: float = DEFAULT_SERVING_BUDGET_MS
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
        if self.split not in SPLIT_STRATEGIES:
            raise ModelError(f"split={self.split!r}: use one of {list(SPLIT_STRATEGIES)}")

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
        return PromotionPolicy(
            self.alpha, self.min_ks, self.max_ece, self.promote_override, self.serving_budget_ms
        )

    @property
    def inputs(self) -> InputPolicy:
        return InputPolicy(self.protected_extra, self.allow_age)

    def with_settings(self, settings: Settings) -> TrainingConfig:
        """Add the deployment's protected list, age opt-in and serving budget (``Settings``)."""
        extra = tuple(dict.fromkeys([*self.protected_extra, *settings.protected_attributes]))
        return dataclasses.replace(
            self,
            protected_extra=extra,
            allow_age=self.allow_age or settings.allow_age,
            serving_budget_ms=settings.serving_budget_ms,
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
            elif f.name in ("select_by", "split"):
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
