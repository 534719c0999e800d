"""The champion compiled into an array scorer for the real-time path (pure, no I/O).

:func:`compile_champion` reads the fitted sklearn pipeline once and keeps only arrays and lookup
dicts: the imputation values, the scaler's means and scales, the quantile-bin edges, the one-hot
and ordinal category indexes, and the estimator's parameters. A request then costs a few numpy
operations on a small matrix, with no DataFrame and no pipeline walk. The operations are the ones
sklearn performs, in the same order and dtypes, so the probability equals the pipeline's
``predict_proba`` to rounding (a test holds it to 1e-9 against the batch job).

The estimator is compiled by its model kind (:mod:`modelkinds`: each kind's module says how, and
how its reasons are computed, named in :attr:`CompiledScorer.reason_method`); the reasons equal
the batch job's. An estimator no kind recognises raises
:class:`modelkinds.UnknownModelKind`. A pipeline with a step this module or the kind does not
know raises :class:`NotCompilable`; the API then falls back to the batch job's DataFrame path
for that champion (slower, same answers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

import modelkinds
from modelkinds import NotCompilable
from serving.scoring import (
    N_REASONS,
    ScoringConfig,
    base_estimator,
    human_name,
    kept_parts,
    output_to_source,
    pd_to_score,
    source_features,
    split_pipeline,
)

logger = logging.getLogger(__name__)

Block = Callable[[Sequence[Mapping[str, Any]]], np.ndarray]


# ---- preprocessing ---------------------------------------------------------------------------
def _numeric(rows: Sequence[Mapping[str, Any]], cols: list[str]) -> np.ndarray:
    # None becomes NaN in a float64 array
    return np.array(
        [[row.get(c) for c in cols] for row in rows], dtype=np.float64, ndmin=2
    ).reshape(len(rows), len(cols))


def _objects(rows: Sequence[Mapping[str, Any]], cols: list[str]) -> list[list[Any]]:
    return [[row.get(c) for c in cols] for row in rows]


def _is_missing(v: Any) -> bool:
    """Missing as sklearn's imputers see an object column: NaN only (None is a category)."""
    return isinstance(v, float) and math.isnan(v)


@dataclass
class _Steps:
    """One ColumnTransformer part: its columns and its fitted steps, compiled."""

    cols: list[str]
    steps: list[Any]

    def compile(self) -> Block:
        steps = list(self.steps)
        cols = self.cols
        names = [type(s).__name__ for s in steps]
        categorical_tail = names and names[-1] in ("OneHotEncoder", "OrdinalEncoder")
        if categorical_tail:
            return self._categorical(steps, cols)
        funcs = [_numeric_step(s) for s in steps]

        def block(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
            x = _numeric(rows, cols)
            for f in funcs:
                x = f(x)
            return x

        return block

    @staticmethod
    def _categorical(steps: list[Any], cols: list[str]) -> Block:
        fill: Any = None
        for s in steps[:-1]:
            if type(s).__name__ != "SimpleImputer" or s.strategy != "constant":
                raise NotCompilable(f"categorical step {type(s).__name__} is not supported")
            if getattr(s, "add_indicator", False):
                raise NotCompilable("SimpleImputer(add_indicator=True) on categoricals")
            fill = s.fill_value
        enc = steps[-1]
        if type(enc).__name__ == "OneHotEncoder":
            if getattr(enc, "drop_idx_", None) is not None:
                raise NotCompilable("OneHotEncoder(drop=...) is not supported")
            if getattr(enc, "_infrequent_enabled", False):
                raise NotCompilable("OneHotEncoder with infrequent categories is not supported")
            if enc.handle_unknown not in ("ignore", "infrequent_if_exist", "warn"):
                raise NotCompilable(f"OneHotEncoder(handle_unknown={enc.handle_unknown!r})")
            offsets = np.cumsum([0] + [len(c) for c in enc.categories_])
            index = [{_key(v): k for k, v in enumerate(cats)} for cats in enc.categories_]
            width = int(offsets[-1])

            def onehot(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
                out = np.zeros((len(rows), width), dtype=np.float64)
                for i, vals in enumerate(_objects(rows, cols)):
                    for j, v in enumerate(vals):
                        k = index[j].get(_key(fill if _is_missing(v) else v))
                        if k is not None:
                            out[i, offsets[j] + k] = 1.0
                return out

            return onehot
        if enc.handle_unknown != "use_encoded_value":
            raise NotCompilable(f"OrdinalEncoder(handle_unknown={enc.handle_unknown!r})")
        unknown = float(enc.unknown_value)
        missing_code = float(getattr(enc, "encoded_missing_value", np.nan))
        index = [{_key(v): float(k) for k, v in enumerate(cats)} for cats in enc.categories_]

        def ordinal(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
            out = np.empty((len(rows), len(cols)), dtype=np.float64)
            for i, vals in enumerate(_objects(rows, cols)):
                for j, v in enumerate(vals):
                    if _is_missing(v) and fill is None:
                        out[i, j] = missing_code
                    else:
                        out[i, j] = index[j].get(_key(fill if _is_missing(v) else v), unknown)
            return out

        return ordinal


def _key(v: Any) -> Any:
    """Category lookup key: numbers by value (1 and 1.0 alike), strings as themselves."""
    if v is None:
        return ("none",)
    if isinstance(v, (bool, np.bool_)):
        return ("b", bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return ("n", float(v))
    return ("s", str(v))


def _numeric_step(step: Any) -> Callable[[np.ndarray], np.ndarray]:
    name = type(step).__name__
    if name == "SimpleImputer":
        stats = np.asarray(step.statistics_, dtype=np.float64)
        if np.isnan(stats).any() and not getattr(step, "keep_empty_features", False):
            raise NotCompilable("SimpleImputer with an all-missing training column")
        # add_indicator: sklearn appends one 0/1 column per feature that had missing values in
        # training (MissingIndicator.features_), after the imputed columns.
        indicator = getattr(step, "indicator_", None) if step.add_indicator else None
        flagged = None if indicator is None else np.asarray(indicator.features_, dtype=np.intp)

        def impute(x: np.ndarray) -> np.ndarray:
            filled = np.where(np.isnan(x), stats, x)
            if flagged is None:
                return filled
            return np.hstack([filled, np.isnan(x[:, flagged]).astype(np.float64)])

        return impute
    if name == "StandardScaler":
        mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
        scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None

        def standardise(x: np.ndarray) -> np.ndarray:
            x = x.copy()
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            return x

        return standardise
    if name == "KBinsDiscretizer":
        if step.encode not in ("onehot", "onehot-dense"):
            raise NotCompilable(f"KBinsDiscretizer(encode={step.encode!r}) is not supported")
        inner = [np.asarray(e[1:-1], dtype=np.float64) for e in step.bin_edges_]
        n_bins = [int(b) for b in step.n_bins_]
        offsets = np.cumsum([0, *n_bins])[:-1]
        width = int(sum(n_bins))
        # every column's inner edges in one (columns x most edges) matrix, padded with NaN (no
        # value is >= NaN): searchsorted(edges, v, side="right") is the count of edges <= v,
        # one comparison for all columns instead of a searchsorted per column
        most = max([len(e) for e in inner] + [1])
        edges = np.full((len(inner), most), np.nan, dtype=np.float64)
        for j, e in enumerate(inner):
            edges[j, : len(e)] = e
        n_edges = np.asarray([len(e) for e in inner], dtype=np.int64)

        def bins(x: np.ndarray) -> np.ndarray:
            out = np.zeros((x.shape[0], width), dtype=np.float64)
            with np.errstate(invalid="ignore"):
                index = (edges[None, :, :] <= x[:, :, None]).sum(axis=2)
            index = np.where(np.isnan(x), n_edges, index)  # searchsorted puts NaN last
            rows = np.repeat(np.arange(x.shape[0]), len(inner))
            out[rows, (offsets + index).ravel()] = 1.0
            return out

        return bins
    if name == "FunctionTransformer" and step.func is None:
        return lambda x: x
    raise NotCompilable(f"numeric step {name} is not supported")


def _compile_preprocess(preprocess: Any) -> tuple[list[str], list[Block]]:
    inputs = source_features(preprocess)
    transformers = getattr(preprocess, "transformers_", None)
    if transformers is None:
        raise NotCompilable(f"preprocess {type(preprocess).__name__} is not a ColumnTransformer")
    blocks: list[Block] = []
    for trans, names in kept_parts(transformers, inputs):
        if trans == "passthrough":
            blocks.append(_Steps(names, []).compile())
            continue
        steps = [s for _n, s in trans.steps] if hasattr(trans, "steps") else [trans]
        blocks.append(_Steps(names, steps).compile())
    return inputs, blocks


# ---- estimators ------------------------------------------------------------------------------
@dataclass
class _Model:
    kind: str
    raw: Callable[[np.ndarray], np.ndarray]  # what the calibrator (if any) is fitted on
    proba: Callable[[np.ndarray], np.ndarray]  # uncalibrated positive-class probability
    contribs: Callable[[np.ndarray], np.ndarray] | None
    calibrators: list[Any] = field(default_factory=list)
    reason_method: str = ""


def _compile_model(model: Any) -> _Model:
    calibrators: list[Any] = []
    if type(model).__name__ == "CalibratedClassifierCV":
        if len(model.calibrated_classifiers_) != 1 or len(model.classes_) != 2:
            raise NotCompilable("only a binary CalibratedClassifierCV with one calibrator")
        cc = model.calibrated_classifiers_[0]
        calibrators = list(cc.calibrators)
        if len(calibrators) != 1:
            raise NotCompilable("only binary calibration is supported")
    est = base_estimator(model)
    kind = modelkinds.kind_of(est)  # a model no kind recognises fails loudly, here and in batch
    compiled = kind.compile(est)
    return _Model(
        kind.name,
        compiled.raw,
        compiled.proba,
        compiled.contribs,
        calibrators,
        compiled.reason_method,
    )


# ---- the scorer ------------------------------------------------------------------------------
@dataclass
class CompiledScorer:
    """A champion as arrays: ``score(rows)`` -> one result dict per row (see the module doc)."""

    features: list[str]
    blocks: list[Block]
    model: _Model
    source_names: list[str]
    source_index: np.ndarray  # preprocessed column -> source feature position
    config: ScoringConfig
    labels: list[str] = field(default_factory=list)
    _agg: np.ndarray | None = field(default=None, repr=False)
    _tiers: tuple[np.ndarray, list[str]] | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def reason_method(self) -> str:
        return self.model.reason_method

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        parts = [b(rows) for b in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def pd(self, xt: np.ndarray) -> np.ndarray:
        if not self.model.calibrators:
            return np.asarray(self.model.proba(xt), dtype=np.float64)
        cal = self.model.calibrators[0]
        raw = self.model.raw(xt)
        if type(cal).__name__ == "_SigmoidCalibration":
            return np.asarray(expit(-(cal.a_ * raw + cal.b_)), dtype=np.float64)
        return np.asarray(cal.predict(raw), dtype=np.float64)

    def source_contributions(self, xt: np.ndarray) -> np.ndarray | None:
        if self.model.contribs is None:
            return None
        out = np.asarray(self.model.contribs(xt), dtype=np.float64)
        if self._agg is None:
            agg = np.zeros((len(self.source_index), len(self.source_names)), dtype=np.float64)
            agg[np.arange(len(self.source_index)), self.source_index] = 1.0
            self._agg = agg
        return out @ self._agg  # one-hot and bin columns summed into their source feature

    def score(
        self,
        rows: Sequence[Mapping[str, Any]],
        ids: Sequence[str | None] | None = None,
        with_reasons: bool = True,
        xt: np.ndarray | None = None,
        pd_values: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """One result per row: pd, score, risk_tier, decision, reasons (top risk-increasing).
        ``xt`` and ``pd_values``: ``transform(rows)`` and ``pd(xt)`` when the caller has them."""
        if not rows:
            return []
        if xt is None:
            xt = self.transform(rows)
        if pd_values is None:
            pd_values = self.pd(xt)
        scores = pd_to_score(pd_values, self.config.scale)
        if self._tiers is None:
            cuts = self.config.tiers
            self._tiers = (np.asarray(cuts.cuts[::-1], dtype=np.float64), list(cuts.names[::-1]))
        ascending, names = self._tiers  # as assign_tiers: a score on a cut gets the better tier
        tiers = [names[k] for k in np.searchsorted(ascending, scores, side="right")]
        src = self.source_contributions(xt) if with_reasons else None
        n_reasons = self.config.n_reasons
        out: list[dict[str, Any]] = []
        for i in range(len(rows)):
            p = float(pd_values[i])
            reasons: list[dict[str, Any]] = []
            if src is not None:
                values = src[i]
                for k in np.argsort(-values, kind="stable")[:n_reasons]:
                    if values[k] > 0:
                        reasons.append(
                            {
                                "feature": self.source_names[k],
                                "name": self.labels[k],
                                "contribution": float(values[k]),
                            }
                        )
            out.append(
                {
                    "application_id": ids[i] if ids is not None else None,
                    "pd": p,
                    "score": int(scores[i]),
                    "risk_tier": str(tiers[i]),
                    "decision": "decline" if p >= self.config.threshold else "approve",
                    "reasons": reasons,
                }
            )
        return out


def compile_pipeline(pipeline: Any, config: ScoringConfig | None = None) -> CompiledScorer:
    """Compile a fitted ``Pipeline([("preprocess", ...), ("model", ...)])``."""
    preprocess, model = split_pipeline(pipeline)
    features, blocks = _compile_preprocess(preprocess)
    compiled_model = _compile_model(model)
    out_sources = output_to_source(preprocess)
    names = list(dict.fromkeys(out_sources))
    position = {n: i for i, n in enumerate(names)}
    return CompiledScorer(
        features=features,
        blocks=blocks,
        model=compiled_model,
        source_names=names,
        source_index=np.asarray([position[s] for s in out_sources], dtype=np.int64),
        config=config or ScoringConfig(),
        labels=[human_name(n) for n in names],
    )


def compile_champion(champion: Any, config: ScoringConfig | None = None) -> CompiledScorer:
    """Compile a loaded :class:`serving.registry.Champion` with its own threshold."""
    return compile_pipeline(champion.pipeline, champion.config(config))


__all__ = ["N_REASONS", "CompiledScorer", "NotCompilable", "compile_champion", "compile_pipeline"]
