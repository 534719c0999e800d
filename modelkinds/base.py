"""What a model kind declares (pure; loads no heavy library on import).

A kind is one module of this package holding one :class:`ModelKind` named ``KIND``. Training
builds, searches and fits it through the declaration; serving compiles and explains the fitted
estimator through it; the pipeline's parallel training branches, the DAG's ``models`` param and
the CLI's choices list the registered kinds (:mod:`modelkinds`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from riskstream.scorescale import ScoreScale

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

TREESHAP = "TreeSHAP (path-dependent, exact)"
"""The tree kinds' reason method: exact Shapley values of the path-dependent conditional
expectation (Lundberg et al., 2020), per preprocessed column."""

NAME_RE = re.compile(r"^[a-z][a-z0-9]*$")
"""A kind's name: it becomes a registry tag value, a DAG param value, a step and a state name."""


class UnknownModelKind(ValueError):
    """No registered kind has this name or estimator; the message lists the known kinds."""


class NotCompilable(ValueError):
    """The pipeline has a step the array compiler does not know; the message names it."""


@dataclass(frozen=True)
class FitOptions:
    """How an estimator is built and fitted, whatever its kind."""

    pos_weight: float = 1.0  # goods / bads, for class-imbalance handling
    n_jobs: int = 2  # workers of a scikit-learn ensemble
    seed: int = 42
    threads: int = 1  # a library's own OpenMP threads (XGBoost)
    early_stopping_rounds: int = 200  # kinds that stop early on the inner validation rows


@dataclass(frozen=True)
class CompiledEstimator:
    """A fitted estimator as array functions of the preprocessed matrix (the real-time path)."""

    raw: Callable[[np.ndarray], np.ndarray]  # what a calibrator (if any) is fitted on
    proba: Callable[[np.ndarray], np.ndarray]  # uncalibrated positive-class probability
    contribs: Callable[[np.ndarray], np.ndarray]  # per preprocessed column, for the reasons
    reason_method: str  # how ``contribs`` is computed, as the API reports it


Preprocess = Callable[[list[str], list[str], "str | None"], Any]
"""(numeric columns, categorical columns, variant or None for the default) -> an unfitted
``ColumnTransformer``."""

Estimator = Callable[[dict[str, Any], FitOptions], Any]
"""(parameters without ``variant``, options) -> an unfitted estimator with imbalance handling."""

FitTrial = Callable[[Any, Any, Any, Any, Any, FitOptions], dict[str, Any]]
"""(estimator, x_fit, y_fit, x_val, y_val, options) -> what the trial found (it fits in place)."""

Contributions = Callable[[Any, Any, bool], "np.ndarray"]
"""(fitted estimator, preprocessed matrix, exact) -> contributions per row and column."""


@dataclass(frozen=True)
class ReportContext:
    """What a kind's :attr:`ModelKind.report` may read besides the fitted estimator."""

    columns: tuple[str, ...]  # the preprocessed columns' names (get_feature_names_out)
    # the served pd is expit(slope * raw + intercept), raw the estimator's decision function
    # (Platt scaling on top of it); None when the estimator is served uncalibrated
    calibration: tuple[float, float] | None
    scale: ScoreScale = field(default_factory=ScoreScale)  # how the served pd becomes a score
    preprocess: Any = None  # the fitted preprocessing (e.g. to name the categories of codes)


@dataclass(frozen=True)
class KindReport:
    """What a kind adds to its training run: artifacts (file name -> text, logged under
    ``names.KIND_REPORT_DIR``) and a Markdown section for the model card (may be empty)."""

    artifacts: Mapping[str, str]
    card: str = ""


SparkFit = Callable[[Any, Any, Sequence[str], str, int], Any]
"""(unfitted estimator, Spark DataFrame, its feature columns, its label column, workers) -> the
estimator fitted on the Spark cluster: the same class, parameters and array interface as a fit
on one machine gives (so compiling, explaining and registering it are unchanged)."""

Report = Callable[[Any, ReportContext], KindReport]
"""(fitted estimator, context) -> what the kind publishes about it (e.g. a points table)."""


def fit_plain(
    estimator: Any, x_fit: Any, y_fit: Any, x_val: Any, y_val: Any, options: FitOptions
) -> dict[str, Any]:
    """A search trial that fits on the fit rows only and finds no parameter."""
    estimator.fit(x_fit, y_fit)
    return {}


def unchanged(estimator: Any) -> None:
    """The default :attr:`ModelKind.settle`: nothing to change after the fit."""


@dataclass(frozen=True)
class ModelKind:
    """One model kind: everything training and serving need to know about it.

    ``search_space`` and ``default_params`` may hold ``variant``, which picks the kind's
    preprocessing (see :data:`Preprocess`) and never reaches the estimator.
    """

    name: str  # lr: the registry tag, the DAG param value, the step ``train_<name>``
    label: str  # Logistic Regression: run names and tables
    order: int  # position among the kinds (ASL branches, CLI choices, default set)
    estimator_classes: tuple[str, ...]  # fitted estimator class names this kind recognises
    default_params: Mapping[str, Any]  # the search's first trial
    library_defaults: Mapping[str, Any]  # the library's own defaults (the benchmark's plain fit)
    search_space: Mapping[str, Sequence[Any]]
    preprocess: Preprocess
    estimator: Estimator
    compile: Callable[[Any], CompiledEstimator]  # raises NotCompilable
    contributions: Contributions  # the batch job's reasons, same values as ``compile``'s
    reason_method: str  # how the reasons are computed, for docs and the model card
    fit_trial: FitTrial = fit_plain
    settle: Callable[[Any], None] = unchanged  # after a fit, e.g. predict single-threaded
    report: Report | None = None  # extra run artifacts and a model-card section, if any
    # fits past one machine on a Spark cluster (training.spark_fit), if the kind can
    spark_fit: SparkFit | None = None

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(
                f"model kind name {self.name!r} must be lower-case letters and digits, "
                "starting with a letter"
            )
        if not self.estimator_classes:
            raise ValueError(f"model kind {self.name!r} recognises no estimator class")

    def recognises(self, estimator: Any) -> bool:
        """Whether a fitted estimator (wrappers already looked through) is of this kind."""
        return type(estimator).__name__ in self.estimator_classes
