"""Pure scoring: probability of default -> 300-850 score, risk tier, decision and reason codes.

Nothing here touches the network, S3 or the environment: the batch job and the API both call
:func:`explain` with a fitted sklearn ``Pipeline`` (``preprocess`` then ``model``) and a
DataFrame of features, so one record scores identically in both.

Score scaling is :class:`riskstream.scorescale.ScoreScale` ("points to double the odds", the usual
scorecard convention: ``score = offset + factor * ln((1 - pd) / pd)``, rounded and clipped).
With the defaults (750 points at 50:1 odds, 40 points to double; ``Settings.score_scale``)
pd = 1/51 scores 750, pd = 1/101 (100:1) scores 790 and pd = 1/26 (25:1) scores 710. Higher is
safer. The risk tiers start at fixed odds (``riskstream.scorescale.TIER_ODDS``: 25:1, 8.8:1,
3.1:1), i.e. at 710, 650 and 590 points on the default scale.

Reason codes are the three source features that push this account's risk up the most, from
contributions per preprocessed column that the model's kind declares (each module of
:mod:`modelkinds` says how: exact path-dependent TreeSHAP for XGBoost and random forests,
``coef * (x - reference)`` for logistic regression). ``ScoringConfig(exact_contributions=
False)`` lets a kind use a faster approximation (the trees' path decomposition, about 30x faster
on a 1M-row backfill). A model no kind recognises fails loudly.

For a calibrated champion (``CalibratedClassifierCV``) the contributions are those of the
estimator inside it: calibration is a monotone map, so it does not change which features raise
the risk the most.

Preprocessed columns (e.g. one-hot ``education_university``) are summed back to the source
feature they came from (``education``) before ranking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

import modelkinds
from riskstream.names import N_REASONS, SCORES_COLUMNS
from riskstream.scorescale import DEFAULT_SCALE, ScoreScale

_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "double": pa.float64(),
    "int": pa.int32(),
}
SCORES_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in SCORES_COLUMNS])
"""The scores table's Arrow schema, from :data:`riskstream.names.SCORES_COLUMNS`."""

TIER_NAMES: tuple[str, ...] = ("Prime", "Near-prime", "Subprime", "High risk")
_PD_FLOOR = 1e-9
CHUNK_ROWS = 2_000
"""Rows :func:`explain` scores at a time. A forest's reasons walk every tree's decision path,
a rows x trees x depth matrix: in chunks, a batch's working memory is that of one chunk (tens
of MB) instead of growing with the table (1.9 GiB for 142,000 rows); results are identical."""


@dataclass(frozen=True)
class TierThresholds:
    """Minimum score of each tier, best first; below the last cut is "High risk"."""

    cuts: tuple[float, ...] = DEFAULT_SCALE.tier_cuts()  # TIER_ODDS on the default scale
    names: tuple[str, ...] = TIER_NAMES

    def __post_init__(self) -> None:
        if len(self.names) != len(self.cuts) + 1:
            raise ValueError(
                f"tiers: {len(self.names)} names need {len(self.names) - 1} cuts, "
                f"got cuts={self.cuts}"
            )
        if any(a <= b for a, b in zip(self.cuts, self.cuts[1:], strict=False)):
            raise ValueError(f"tier cuts={self.cuts} must be strictly decreasing")


@dataclass(frozen=True)
class ScoringConfig:
    scale: ScoreScale = field(default_factory=ScoreScale)
    tiers: TierThresholds = field(default_factory=TierThresholds)
    threshold: float = 0.5  # the champion's cost-optimal threshold on pd
    n_reasons: int = N_REASONS
    exact_contributions: bool = True  # trees: exact TreeSHAP (False: path attribution)
    chunk_rows: int = CHUNK_ROWS  # rows explained at a time (memory bound, same results)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold={self.threshold} must lie strictly between 0 and 1")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows={self.chunk_rows} must be at least 1")

    @classmethod
    def for_scale(cls, scale: ScoreScale, **changes: Any) -> ScoringConfig:
        """Scoring on ``scale`` (``Settings.score_scale``), with tiers that mean the same
        odds on it (:data:`riskstream.scorescale.TIER_ODDS`)."""
        return cls(scale=scale, tiers=TierThresholds(scale.tier_cuts()), **changes)


def pd_to_score(
    pd_values: np.ndarray | Sequence[float], scale: ScoreScale | None = None
) -> np.ndarray:
    """Probability of default -> integer score on ``scale`` (higher is safer)."""
    scale = scale or ScoreScale()
    # np.clip's own values, without its wrappers' cost (half of this function for one row)
    p = np.minimum(np.maximum(np.asarray(pd_values, dtype=np.float64), _PD_FLOOR), 1.0 - _PD_FLOOR)
    raw = scale.offset + scale.factor * np.log((1.0 - p) / p)
    return np.minimum(np.maximum(np.rint(raw), scale.min_score), scale.max_score).astype(np.int32)


def assign_tiers(scores: np.ndarray, tiers: TierThresholds | None = None) -> np.ndarray:
    """Score -> tier name, using ``tiers.cuts`` (a score equal to a cut gets the better tier)."""
    tiers = tiers or TierThresholds()
    ascending = np.asarray(tiers.cuts[::-1], dtype=np.float64)
    # index into names reversed: 0 = worst tier
    idx = np.searchsorted(ascending, np.asarray(scores, dtype=np.float64), side="right")
    names = np.asarray(tiers.names[::-1], dtype=object)
    return names[idx]


def decision_for(pd_values: np.ndarray, threshold: float) -> np.ndarray:
    """``decline`` when pd is at or above the champion's threshold, else ``approve``."""
    return np.where(np.asarray(pd_values) >= threshold, "decline", "approve").astype(object)


# ---- feature names ---------------------------------------------------------------------------
_FULL_NAMES = {
    "months_delinquent_6m": "Months in arrears, last 6 months",
    "max_delinquency_6m": "Worst arrears, last 6 months",
    "pay_amt_avg_6m": "Average payment, last 6 months",
    "utilisation_avg_6m": "Average utilisation, last 6 months",
    "utilization_avg_6m": "Average utilization, last 6 months",
    "bill_trend_6m": "Bill trend, last 6 months",
    "payment_ratio_avg_5m": "Average payment-to-bill ratio, last 5 months",
    "status_trend_3m": "Repayment status trend, last 3 months",
}
_KNOWN_NAMES = {
    "credit_limit": "Credit limit",
    "utilisation": "Utilisation",
    "utilization": "Utilization",
    "age": "Age",
    "sex": "Sex",
    "education": "Education",
    "marital_status": "Marital status",
    "bill_amt": "Bill amount",
    "pay_amt": "Payment amount",
    "repayment_status": "Repayment status",
}
_MONTH_RE = re.compile(r"^(?P<base>.+)_m(?P<n>\d+)$")
_WINDOW_RE = re.compile(r"^(?P<base>.+)_(?P<n>\d+)m$")


def human_name(feature: str) -> str:
    """``repayment_status_m1`` -> ``Repayment status, last month``; unknown names tidied."""
    if feature in _FULL_NAMES:
        return _FULL_NAMES[feature]
    window = _WINDOW_RE.match(feature)
    if window:
        base = window.group("base")
        label = _KNOWN_NAMES.get(base) or base.replace("_", " ").strip().capitalize()
        return f"{label}, last {window.group('n')} months"
    match = _MONTH_RE.match(feature)
    suffix = ""
    base = feature
    if match:
        base = match.group("base")
        n = int(match.group("n"))
        suffix = ", last month" if n == 1 else f", {n} months ago"
    label = _KNOWN_NAMES.get(base) or base.replace("_", " ").strip().capitalize()
    return label + suffix


# ---- pipeline introspection ------------------------------------------------------------------
def split_pipeline(pipeline: Any) -> tuple[Any, Any]:
    """The contract's two steps: (``preprocess``, ``model``)."""
    steps = dict(getattr(pipeline, "named_steps", {}))
    if "preprocess" not in steps or "model" not in steps:
        raise ValueError(
            "the champion must be a Pipeline with steps 'preprocess' and 'model'; "
            f"got steps {list(steps) or type(pipeline).__name__}"
        )
    return steps["preprocess"], steps["model"]


def base_estimator(model: Any) -> Any:
    """The fitted estimator inside calibration/freezing wrappers (training calibrates with
    ``CalibratedClassifierCV(FrozenEstimator(estimator))``). Sigmoid or isotonic calibration is
    a monotone map of the estimator's output, so its contributions still rank the reasons."""
    for _ in range(5):
        name = type(model).__name__
        if name == "CalibratedClassifierCV" and getattr(model, "calibrated_classifiers_", None):
            model = model.calibrated_classifiers_[0].estimator
        elif name == "FrozenEstimator":
            model = model.estimator
        else:
            break
    return model


def single_threaded(pipeline: Any) -> Any:
    """Set the estimator to one thread: for one-record requests, thread start-up costs more
    than it saves (measured: XGBoost ``inplace_predict`` on one row 3x faster). In place."""
    model = base_estimator(split_pipeline(pipeline)[1])
    if "n_jobs" in getattr(model, "get_params", dict)():
        model.set_params(n_jobs=1)
    return pipeline


def model_kind(model: Any) -> str:
    """The registered kind (``lr``, ``rf``, ``xgb``, ...) of the fitted estimator (wrappers
    looked through); :class:`modelkinds.UnknownModelKind`, naming the known kinds, otherwise."""
    return modelkinds.kind_of(base_estimator(model)).name


def source_features(preprocess: Any) -> list[str]:
    """The input columns the pipeline expects, in order."""
    names = getattr(preprocess, "feature_names_in_", None)
    if names is None:
        raise ValueError("the preprocess step was fitted without column names (feature_names_in_)")
    return [str(n) for n in names]


def output_to_source(preprocess: Any) -> list[str]:
    """For each column of ``preprocess.transform`` output, the source feature it came from."""
    inputs = source_features(preprocess)
    transformers = getattr(preprocess, "transformers_", None)
    if transformers is None:  # a plain transformer: one output per input, or a name map
        outs = [str(n) for n in preprocess.get_feature_names_out(inputs)]
        return [_match_source(o, inputs) for o in outs]
    mapping: list[str] = []
    for trans, col_names in kept_parts(transformers, inputs):
        if trans == "passthrough":
            mapping.extend(col_names)
            continue
        outs = [str(n) for n in trans.get_feature_names_out(col_names)]
        mapping.extend(_match_source(o, col_names) for o in outs)
    return mapping


def kept_parts(transformers: Any, inputs: list[str]) -> Iterator[tuple[Any, list[str]]]:
    """(transformer, the input columns it selects) of each part of a fitted ColumnTransformer's
    ``transformers_`` that reads something and is not dropped."""
    for _name, trans, cols in transformers:
        if trans == "drop":
            continue
        names = column_names(cols, inputs)
        if names:
            yield trans, names


def column_names(cols: Any, inputs: list[str]) -> list[str]:
    """The input columns a ColumnTransformer entry selects (names, indices, a mask, a slice)."""
    if isinstance(cols, slice):
        return inputs[cols]
    values = list(np.atleast_1d(cols))
    if values and isinstance(values[0], (bool, np.bool_)):
        return [c for c, keep in zip(inputs, values, strict=True) if keep]
    return [inputs[int(c)] if isinstance(c, (int, np.integer)) else str(c) for c in values]


def _match_source(out: str, sources: list[str]) -> str:
    if out in sources:
        return out
    prefixed = [s for s in sources if out.startswith(s + "_")]
    if prefixed:
        return max(prefixed, key=len)
    contained = [s for s in sources if s in out]
    return max(contained, key=len) if contained else out


def aggregation_matrix(out_sources: list[str]) -> tuple[list[str], sparse.csr_matrix]:
    """(unique source names in order, matrix summing output columns into them)."""
    names = list(dict.fromkeys(out_sources))
    index = {n: i for i, n in enumerate(names)}
    rows = np.arange(len(out_sources))
    cols = np.array([index[s] for s in out_sources], dtype=np.int64)
    data = np.ones(len(out_sources))
    return names, sparse.csr_matrix((data, (rows, cols)), shape=(len(out_sources), len(names)))


# ---- contributions ---------------------------------------------------------------------------
def contributions(model: Any, xt: Any, exact: bool = False) -> np.ndarray:
    """Per preprocessed column contributions (n_rows x n_columns), as the model's kind explains
    it (:mod:`modelkinds`); a model no kind recognises raises, never scores without reasons."""
    model = base_estimator(model)
    return np.asarray(modelkinds.kind_of(model).contributions(model, xt, exact))


def reason_method(pipeline: Any) -> str:
    """How a fitted pipeline's reasons are computed: its model kind's method."""
    model = base_estimator(split_pipeline(pipeline)[1])
    return modelkinds.kind_of(model).reason_method


def top_reasons(
    source_contribs: np.ndarray, names: list[str], n: int = N_REASONS
) -> list[np.ndarray]:
    """The ``n`` source features with the largest positive contribution per row (else None)."""
    labels = np.asarray([human_name(x) for x in names] + [None], dtype=object)
    if source_contribs.shape[1] == 0:
        return [np.full(source_contribs.shape[0], None, dtype=object) for _ in range(n)]
    k = min(n, source_contribs.shape[1])
    order = np.argsort(-source_contribs, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(source_contribs, order, axis=1)
    order = np.where(picked > 0, order, len(names))  # not risk-increasing: no reason
    out = [labels[order[:, j]] for j in range(k)]
    out.extend(np.full(source_contribs.shape[0], None, dtype=object) for _ in range(n - k))
    return out


# ---- the one scoring path --------------------------------------------------------------------
@dataclass
class Explained:
    """Everything :func:`explain` computes, before :func:`build_scores_table` makes it a table."""

    pd: np.ndarray
    score: np.ndarray
    risk_tier: np.ndarray
    decision: np.ndarray
    reasons: list[np.ndarray]
    source_names: list[str]
    source_contribs: np.ndarray | None


def explain(
    pipeline: Any,
    features: pd.DataFrame,
    config: ScoringConfig,
    with_reasons: bool = True,
    on_rows: Callable[[int], None] | None = None,
) -> Explained:
    """Score a DataFrame of features with the champion pipeline (see the module docstring),
    ``config.chunk_rows`` rows at a time: every row is scored on its own, so the chunks give
    the same results as one pass, with memory bounded by a chunk. ``on_rows(n)`` is told each
    chunk's rows as it is done (a progress count)."""
    preprocess, _ = split_pipeline(pipeline)
    expected = source_features(preprocess)
    missing = [c for c in expected if c not in features.columns]
    if missing:
        raise ValueError(f"features are missing columns the model needs: {missing}")
    inputs, size = features[expected], config.chunk_rows
    if len(inputs) <= size:
        whole = _explain_rows(pipeline, inputs, config, with_reasons)
        if on_rows is not None:
            on_rows(len(inputs))
        return whole
    parts = []
    for i in range(0, len(inputs), size):
        parts.append(_explain_rows(pipeline, inputs.iloc[i : i + size], config, with_reasons))
        if on_rows is not None:
            on_rows(len(parts[-1].pd))
    contribs = [p.source_contribs for p in parts if p.source_contribs is not None]
    return Explained(
        np.concatenate([p.pd for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.risk_tier for p in parts]),
        np.concatenate([p.decision for p in parts]),
        [np.concatenate([p.reasons[j] for p in parts]) for j in range(config.n_reasons)],
        parts[0].source_names,
        np.vstack(contribs) if len(contribs) == len(parts) else None,
    )


def _explain_rows(
    pipeline: Any, features: pd.DataFrame, config: ScoringConfig, with_reasons: bool
) -> Explained:
    preprocess, model = split_pipeline(pipeline)
    xt = preprocess.transform(features)
    proba = np.asarray(model.predict_proba(xt))[:, _positive_index(model)].astype(np.float64)
    score = pd_to_score(proba, config.scale)
    tiers = assign_tiers(score, config.tiers)
    decision = decision_for(proba, config.threshold)
    n = len(features)
    names: list[str] = []
    src: np.ndarray | None = None
    reasons = [np.full(n, None, dtype=object) for _ in range(config.n_reasons)]
    if with_reasons and n:
        contribs = contributions(model, xt, config.exact_contributions)
        if contribs is not None:
            names, agg = aggregation_matrix(output_to_source(preprocess))
            src = np.asarray(agg.T.dot(contribs.T).T)
            reasons = top_reasons(src, names, config.n_reasons)
    return Explained(proba, score, tiers, decision, reasons, names, src)


def _positive_index(model: Any) -> int:
    classes = list(getattr(model, "classes_", [0, 1]))
    return classes.index(1) if 1 in classes else len(classes) - 1


def build_scores_table(
    result: Explained, features: pd.DataFrame, model_name: str, model_version: str
) -> pa.Table:
    """The scores table (:data:`riskstream.names.SCORES_COLUMNS`) for ``features`` scored as
    ``result``: one row per input row, in input order. The one builder of that table."""
    n = len(features)

    def numbers(column: str) -> np.ndarray:
        if column not in features.columns:
            return np.full(n, np.nan)
        return pd.to_numeric(features[column], errors="coerce").to_numpy(dtype=np.float64)

    label, exposure = numbers("label"), numbers("credit_limit")
    obs = (
        pd.to_datetime(features["obs_date"]).dt.date.to_numpy()
        if "obs_date" in features.columns
        else np.full(n, None)
    )
    ids = (
        features["account_id"].astype(str).to_numpy()
        if "account_id" in features.columns
        else np.arange(n).astype(str)
    )
    columns = {
        "account_id": pa.array(ids, pa.string()),
        "obs_date": pa.array(obs, pa.date32()),
        "pd": pa.array(result.pd, pa.float64()),
        "score": pa.array(result.score, pa.int32()),
        "risk_tier": pa.array(result.risk_tier, pa.string()),
        "decision": pa.array(result.decision, pa.string()),
        **{
            f"reason_{i}": pa.array(result.reasons[i - 1], pa.string())
            for i in range(1, N_REASONS + 1)
        },
        "model_name": pa.array([model_name] * n, pa.string()),
        "model_version": pa.array([str(model_version)] * n, pa.string()),
        "label": pa.array(
            np.where(np.isnan(label), 0, label).astype(np.int32), pa.int32(), mask=np.isnan(label)
        ),
        "exposure": pa.array(exposure, pa.float64(), mask=np.isnan(exposure)),
    }
    return pa.table(columns, schema=SCORES_SCHEMA)


def reason_details(
    source_contribs: np.ndarray | None, names: list[str], row: int, n: int = N_REASONS
) -> list[dict[str, Any]]:
    """The top-``n`` risk-increasing features of one row: feature, human name, contribution.

    Same ranking as :func:`top_reasons` (largest positive contribution first, stable ties).
    """
    if source_contribs is None or not names:
        return []
    values = source_contribs[row]
    order = np.argsort(-values, kind="stable")[:n]
    return [
        {"feature": names[i], "name": human_name(names[i]), "contribution": float(values[i])}
        for i in order
        if values[i] > 0
    ]
