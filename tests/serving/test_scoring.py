"""Pure scoring: scale, tiers, decisions and reason codes on small fitted pipelines."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import CATEGORICAL, NUMERIC, features_frame, fit_pipeline
from serving.scoring import (
    ScoreScale,
    ScoringConfig,
    TierThresholds,
    aggregation_matrix,
    assign_tiers,
    build_scores_table,
    contributions,
    decision_for,
    explain,
    human_name,
    model_kind,
    output_to_source,
    pd_to_score,
    reason_details,
    split_pipeline,
)

pytestmark = pytest.mark.unit

TRAIN = features_frame(500, dt.date(2025, 12, 31), seed=11)
SCORE = features_frame(200, dt.date(2026, 1, 31), seed=12)


@pytest.mark.parametrize(
    ("pd_value", "score"),
    [(1 / 51, 750), (1 / 101, 790), (1 / 26, 710), (1 / 201, 830), (0.5, 524)],
)
def test_points_to_double_odds(pd_value: float, score: int) -> None:
    # 750 at 50:1, +40 per doubling; 1:1 odds is 750 - 40*log2(50) = 524.3
    assert pd_to_score([pd_value])[0] == score


def test_tiers_mean_the_same_odds_on_any_scale() -> None:
    assert TierThresholds().cuts == (710.0, 650.0, 590.0)  # 25:1, 8.8:1, 3.1:1 by default
    old = ScoreScale(base_score=600, base_odds=50, pdo=20)
    config = ScoringConfig.for_scale(old, threshold=0.2)
    assert config.tiers.cuts == (580.0, 550.0, 520.0) and config.threshold == 0.2
    # an account at 25:1 odds is Prime on both scales
    for scale, tiers in ((ScoreScale(), TierThresholds()), (old, config.tiers)):
        assert assign_tiers(pd_to_score([1 / 26], scale), tiers)[0] == "Prime"
        assert assign_tiers(pd_to_score([1 / 24], scale), tiers)[0] == "Near-prime"


def test_scores_are_clipped_and_monotone() -> None:
    pds = np.array([0.0, 1e-12, 0.001, 0.01, 0.1, 0.5, 0.9, 0.999, 1.0])
    scores = pd_to_score(pds)
    assert scores.min() >= 300 and scores.max() <= 850
    assert scores[0] == 850 and scores[-1] == 300
    assert (np.diff(scores) <= 0).all()


def test_scale_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="pdo=0"):
        ScoreScale(pdo=0)
    with pytest.raises(ValueError, match=r"threshold=1\.5"):
        ScoringConfig(threshold=1.5)
    with pytest.raises(ValueError, match="strictly decreasing"):
        TierThresholds(cuts=(500, 560, 520))


def test_tier_boundaries_go_to_the_better_tier() -> None:
    tiers = assign_tiers(np.array([850, 710, 709, 650, 649, 590, 589, 300]))
    assert list(tiers) == [
        "Prime", "Prime", "Near-prime", "Near-prime", "Subprime", "Subprime",
        "High risk", "High risk",
    ]  # fmt: skip


def test_decision_at_threshold() -> None:
    assert list(decision_for(np.array([0.1, 0.3, 0.31]), 0.3)) == ["approve", "decline", "decline"]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("repayment_status_m1", "Repayment status, last month"),
        ("bill_amt_m3", "Bill amount, 3 months ago"),
        ("credit_limit", "Credit limit"),
        ("utilization_mean", "Utilization mean"),
        ("utilisation_m1", "Utilisation, last month"),
        ("max_delinquency_6m", "Worst arrears, last 6 months"),
        ("spend_sum_3m", "Spend sum, last 3 months"),
    ],
)
def test_human_names(name: str, label: str) -> None:
    assert human_name(name) == label


def test_one_hot_columns_map_back_to_their_feature() -> None:
    pipeline = fit_pipeline("lr", TRAIN)
    preprocess, _ = split_pipeline(pipeline)
    mapping = output_to_source(preprocess)
    assert mapping[: len(NUMERIC)] == NUMERIC
    assert mapping.count("education") == TRAIN["education"].nunique()
    assert mapping.count("marital_status") == TRAIN["marital_status"].nunique()
    names, agg = aggregation_matrix(mapping)
    assert names == NUMERIC + CATEGORICAL
    assert agg.shape == (len(mapping), len(names))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.mark.parametrize("kind", ["xgb", "lr", "rf"])
def test_contributions_add_up_to_the_prediction(kind: str) -> None:
    pipeline = fit_pipeline(kind, TRAIN)
    preprocess, model = split_pipeline(pipeline)
    xt = preprocess.transform(SCORE[NUMERIC + CATEGORICAL])
    contrib = contributions(model, xt)
    proba = pipeline.predict_proba(SCORE[NUMERIC + CATEGORICAL])[:, 1]
    total = contrib.sum(axis=1)
    if kind == "lr":
        np.testing.assert_allclose(total + model.intercept_[0], _logit(proba), rtol=1e-6)
    elif kind == "xgb":  # bias is constant across rows: differences must match
        gap = _logit(proba) - total
        np.testing.assert_allclose(gap, gap[0], atol=1e-4)
        exact = contributions(model, xt, exact=True).sum(axis=1)
        np.testing.assert_allclose(exact, total, atol=1e-4)  # both add up to the margin
    else:  # TreeSHAP in probability space: contributions + the expected value = pd
        gap = proba - total
        np.testing.assert_allclose(gap, gap[0], atol=1e-9)
        fast = contributions(model, xt, exact=False).sum(axis=1)  # the path decomposition
        np.testing.assert_allclose(fast, total, atol=1e-9)


@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("kind", ["xgb", "lr", "rf"])
def test_reason_codes_are_the_largest_positive_contributions(kind: str, calibrated: bool) -> None:
    pipeline = fit_pipeline(kind, TRAIN, calibrated=calibrated)
    assert model_kind(split_pipeline(pipeline)[1]) == kind
    result = explain(pipeline, SCORE, ScoringConfig(threshold=0.3))
    src = result.source_contribs
    assert src is not None and src.shape == (len(SCORE), len(NUMERIC + CATEGORICAL))
    for row in range(len(SCORE)):
        values = src[row]
        order = [i for i in np.argsort(-values, kind="stable")[:3] if values[i] > 0]
        expected = [human_name(result.source_names[i]) for i in order]
        got = [result.reasons[j][row] for j in range(3)]
        assert got == expected + [None] * (3 - len(expected))
        details = reason_details(src, result.source_names, row)
        assert [d["name"] for d in details] == expected
        assert all(d["contribution"] > 0 for d in details)


def test_scores_table_schema_and_ranges() -> None:
    pipeline = fit_pipeline("xgb", TRAIN)
    result = explain(pipeline, SCORE, ScoringConfig(threshold=0.25))
    table = build_scores_table(result, SCORE, model_name="m", model_version="7").to_pandas()
    assert [c for c in table.columns if c != "obs_date"][:9] == [
        "account_id", "pd", "score", "risk_tier", "decision", "reason_1", "reason_2",
        "reason_3", "model_name",
    ]  # fmt: skip
    assert len(table) == len(SCORE)
    assert table["pd"].between(0, 1).all() and table["score"].between(300, 850).all()
    assert (table["score"] == pd_to_score(table["pd"])).all()
    assert ((table["pd"] >= 0.25) == (table["decision"] == "decline")).all()
    assert table["model_version"].eq("7").all()
    assert table["exposure"].equals(SCORE["credit_limit"].astype(float))


def test_missing_feature_is_named() -> None:
    pipeline = fit_pipeline("lr", TRAIN)
    with pytest.raises(ValueError, match="age"):
        explain(pipeline, SCORE.drop(columns=["age"]), ScoringConfig())


def test_not_a_contract_pipeline_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="preprocess"):
        split_pipeline(object())
    frame = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ValueError, match="'preprocess' and 'model'"):
        explain(frame, frame, ScoringConfig())


def test_pdo_formula_by_hand() -> None:
    scale = ScoreScale()
    pd_value = 0.2
    expected = 750 + 40 / math.log(2) * (math.log(4.0) - math.log(50.0))
    assert pd_to_score([pd_value], scale)[0] == round(expected)


@pytest.mark.parametrize("kind", ["rf", "xgb", "lr"])
def test_chunked_scoring_equals_one_pass(kind: str) -> None:
    # 200 rows in chunks of 7 (the last one short) against one pass over all rows
    pipeline = fit_pipeline(kind, TRAIN, calibrated=kind == "rf")
    whole = explain(pipeline, SCORE, ScoringConfig(threshold=0.3, chunk_rows=len(SCORE)))
    chunked = explain(pipeline, SCORE, ScoringConfig(threshold=0.3, chunk_rows=7))
    np.testing.assert_allclose(chunked.pd, whole.pd, rtol=0, atol=1e-12)
    assert whole.source_contribs is not None and chunked.source_contribs is not None
    assert chunked.source_contribs.shape == (len(SCORE), len(whole.source_names))
    np.testing.assert_allclose(chunked.source_contribs, whole.source_contribs, rtol=0, atol=1e-12)
    assert chunked.source_names == whole.source_names
    assert (chunked.score == whole.score).all()
    assert list(chunked.risk_tier) == list(whole.risk_tier)
    assert list(chunked.decision) == list(whole.decision)
    for ours, theirs in zip(chunked.reasons, whole.reasons, strict=True):
        assert list(ours) == list(theirs)
    assert any(r is not None for r in chunked.reasons[0])


def test_rf_reasons_memory_is_bounded_by_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # the forest's TreeSHAP is only ever asked for a chunk of rows at a time
    from modelkinds.parts.treeshap import TreeShap

    pipeline = fit_pipeline("rf", TRAIN)
    asked: list[int] = []
    original = TreeShap.contributions

    def spy(self: TreeShap, x: np.ndarray) -> np.ndarray:
        asked.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(TreeShap, "contributions", spy)
    explain(pipeline, SCORE, ScoringConfig(chunk_rows=64))
    assert asked == [64, 64, 64, 8]


def test_chunk_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_rows=0"):
        ScoringConfig(chunk_rows=0)


def test_a_champion_scores_on_the_settings_scale() -> None:
    from serving.registry import Champion

    scale = ScoreScale(base_score=600, base_odds=50, pdo=20)
    champion = Champion("m", "1", None, object(), {"threshold": "0.3"}, None, scale=scale)
    config = champion.config()
    assert (config.scale, config.threshold) == (scale, 0.3)
    assert config.tiers.cuts == (580.0, 550.0, 520.0)
    # an explicit scoring configuration keeps its own scale, with the champion's threshold
    given = champion.config(ScoringConfig(threshold=0.5))
    assert (given.scale, given.threshold) == (ScoreScale(), 0.3)
