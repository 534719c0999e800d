"""The compiled array scorer equals the batch job's DataFrame path, model by model."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from benchmarks.fixtures import CATEGORICAL, NUMERIC, features_frame, fit_pipeline
from serving.compiled import NotCompilable, compile_pipeline
from serving.scoring import (
    ScoringConfig,
    aggregation_matrix,
    contributions,
    explain,
    output_to_source,
    split_pipeline,
)
from training.dataset import FeatureColumns
from training.models import build_estimator, build_preprocess, default_params

pytestmark = pytest.mark.unit

TRAIN = features_frame(500, dt.date(2025, 12, 31), seed=21)
SCORE = features_frame(200, dt.date(2026, 1, 31), seed=22)


def with_gaps(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Missing values in a fifth of two numeric and one categorical column."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in ("bill_amt_m1", "utilisation_avg_3m"):
        out.loc[rng.random(len(out)) < 0.2, col] = np.nan
    out["education"] = out["education"].astype(object)
    out.loc[rng.random(len(out)) < 0.2, "education"] = None
    return out


def training_pipeline(kind: str, variant: str = "scaled") -> Pipeline:
    """The shape training registers: its preprocess, its estimator, sigmoid calibration."""
    train = with_gaps(TRAIN, 1)
    columns = FeatureColumns(tuple(NUMERIC), tuple(CATEGORICAL))
    pre = build_preprocess(kind, columns, variant)
    params = {**default_params(kind), "variant": variant} if kind == "lr" else default_params(kind)
    if kind == "rf":
        params = {**params, "n_estimators": 40}
    if kind == "xgb":
        params = {**params, "n_estimators": 60}
    est = build_estimator(kind, params, pos_weight=2.0, n_jobs=1, seed=3)
    cut = 350
    x, y = train[columns.all], train["label"].to_numpy()
    with warnings.catch_warnings():  # discrete columns have fewer quantiles than bins
        warnings.filterwarnings("ignore", message="Bins whose width are too small")
        est.fit(pre.fit_transform(x.iloc[:cut]), y[:cut])
    calibrated = CalibratedClassifierCV(FrozenEstimator(est), method="sigmoid")
    calibrated.fit(pre.transform(x.iloc[cut:]), y[cut:])
    return Pipeline([("preprocess", pre), ("model", calibrated)])


CASES: list[tuple[str, Any]] = [
    ("lr-plain", lambda: fit_pipeline("lr", TRAIN)),
    ("rf-plain", lambda: fit_pipeline("rf", TRAIN)),
    ("xgb-plain", lambda: fit_pipeline("xgb", TRAIN)),
    ("xgb-calibrated", lambda: fit_pipeline("xgb", TRAIN, calibrated=True)),
    ("lr-training-scaled", lambda: training_pipeline("lr", "scaled")),
    ("lr-training-binned", lambda: training_pipeline("lr", "binned")),
    ("rf-training", lambda: training_pipeline("rf")),
    ("xgb-training", lambda: training_pipeline("xgb")),
]


def records(frame: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    out = []
    for row in frame[features].to_dict("records"):
        out.append({k: (None if k in NUMERIC and np.isnan(v) else v) for k, v in row.items()})
    return out


@pytest.mark.parametrize(("name", "make"), CASES, ids=[c[0] for c in CASES])
def test_compiled_equals_the_batch_path(name: str, make: Any) -> None:
    pipeline = make()
    frame = with_gaps(SCORE, 7) if "training" in name else SCORE
    config = ScoringConfig(threshold=0.3, exact_contributions=True)
    compiled = compile_pipeline(pipeline, config)
    reference = explain(pipeline, frame, config)
    rows = records(frame, compiled.features)
    xt_ref = split_pipeline(pipeline)[0].transform(frame[compiled.features])
    np.testing.assert_allclose(compiled.transform(rows), xt_ref, rtol=0, atol=1e-12)
    results = compiled.score(rows)
    pd_values = np.array([r["pd"] for r in results])
    np.testing.assert_allclose(pd_values, reference.pd, rtol=1e-9, atol=1e-12)
    assert [r["score"] for r in results] == list(reference.score)
    assert [r["risk_tier"] for r in results] == list(reference.risk_tier)
    assert [r["decision"] for r in results] == list(reference.decision)
    # reasons: the reference method on the preprocessed matrix (exact TreeSHAP for XGBoost)
    preprocess, model = split_pipeline(pipeline)
    names, agg = aggregation_matrix(output_to_source(preprocess))
    ref_src = np.asarray(agg.T.dot(contributions(model, xt_ref, exact=True).T).T)
    src = compiled.source_contributions(compiled.transform(rows))
    assert src is not None and compiled.source_names == names
    np.testing.assert_allclose(src, ref_src, rtol=1e-5, atol=2e-6)  # XGBoost sums in float32
    for i, result in enumerate(results[:50]):
        expected = [reference.reasons[j][i] for j in range(3) if reference.reasons[j][i]]
        assert [r["name"] for r in result["reasons"]] == expected, i
    # one row alone scores as inside the batch
    alone = compiled.score(rows[:1])[0]
    assert alone["pd"] == pytest.approx(results[0]["pd"], rel=1e-12)


def test_xgb_reasons_are_exact_treeshap_not_the_approximation() -> None:
    pipeline = fit_pipeline("xgb", TRAIN)
    compiled = compile_pipeline(pipeline)
    rows = records(SCORE, compiled.features)
    xt = compiled.transform(rows)
    exact = contributions(split_pipeline(pipeline)[1], xt, exact=True)
    approx = contributions(split_pipeline(pipeline)[1], xt, exact=False)
    got = compiled.model.contribs(xt)  # type: ignore[misc]
    # XGBoost accumulates in float32: equal to its rounding
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=2e-6)
    assert not np.allclose(got, approx, rtol=1e-5, atol=2e-6)
    assert compiled.reason_method.startswith("TreeSHAP (path-dependent, exact); precomputed")


@pytest.mark.parametrize("kind", ["xgb", "rf"])
def test_tree_reasons_take_the_integral_when_the_table_is_too_big(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelkinds.parts.treeshap

    pipeline = fit_pipeline(kind, TRAIN)
    fast = compile_pipeline(pipeline)
    monkeypatch.setattr(modelkinds.parts.treeshap, "MAX_TABLE", 10)
    slow = compile_pipeline(pipeline)
    assert "precomputed per leaf" in fast.reason_method
    assert slow.reason_method.startswith("TreeSHAP (path-dependent, exact); Gauss-Legendre")
    xt = fast.transform(records(SCORE, fast.features))
    np.testing.assert_allclose(
        fast.model.contribs(xt),  # type: ignore[misc]
        slow.model.contribs(xt),  # type: ignore[misc]
        rtol=0,
        atol=1e-9,
    )


def test_unknown_steps_are_refused_by_name() -> None:
    from sklearn.preprocessing import PolynomialFeatures

    pipeline = fit_pipeline("lr", TRAIN)
    pre = split_pipeline(pipeline)[0]
    pre.transformers_[0] = ("num", PolynomialFeatures(), NUMERIC)
    with pytest.raises(NotCompilable, match="PolynomialFeatures"):
        compile_pipeline(pipeline)
