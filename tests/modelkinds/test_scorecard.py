"""The WoE scorecard kind: its binning, WoE and IV against hand-computed values, monotonic bins
where the business expects them, a points table that adds up to the served score, and a compiled
scorer and reasons equal to the fitted model's. (tests/modelkinds/test_registry.py runs it
through build, fit, compile and explain with every other kind.)"""

from __future__ import annotations

import math
import pickle
import warnings
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

import modelkinds
from modelkinds import scorecard
from riskstream.scorescale import ScoreScale
from serving.compiled import compile_pipeline
from serving.scoring import ScoringConfig, explain, pd_to_score
from training.dataset import FeatureColumns
from training.lawful import InputPolicy, select_inputs
from training.models import (
    SearchBudget,
    base_estimator,
    configured_pipeline,
    fit_with_search,
    kind_report,
)

pytestmark = pytest.mark.unit
KIND = modelkinds.get("scorecard")
COLUMNS = FeatureColumns(
    numeric=("utilisation_m1", "delinquent_months", "pay_amt_m1", "bill_amt_m1"),
    categorical=("education",),
)


def portfolio(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Credit-like rows: risk rises with utilisation and arrears, falls with payments; the bill
    amount is noise; a few utilisations are missing and riskier than average."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "utilisation_m1": rng.uniform(0, 1.2, n),
            "delinquent_months": rng.integers(0, 6, n).astype(float),
            "pay_amt_m1": rng.lognormal(7, 1, n),
            "bill_amt_m1": rng.lognormal(8, 1, n),
            "education": rng.choice(["graduate", "university", "high_school"], n).astype(object),
        }
    )
    risk = (
        2.0 * x["utilisation_m1"]
        + 0.5 * x["delinquent_months"]
        - 0.4 * np.log(x["pay_amt_m1"])
        + 1.0 * (x["education"] == "high_school")
        - 0.5 * (x["education"] == "graduate")
    )
    missing = rng.random(n) < 0.05
    x.loc[missing, "utilisation_m1"] = np.nan
    risk = np.where(missing, risk + 1.0, risk)
    y = (rng.random(n) < expit(risk - 1.5)).astype(int)
    return x, y


@pytest.fixture(scope="module")
def fitted() -> Any:
    x, y = portfolio(3000, 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        return fit_with_search("scorecard", x, y, COLUMNS, SearchBudget(max_trials=2, cv_folds=3))


# ---- binning, WoE and IV, by hand ----------------------------------------------------------
def test_coarse_classing_pools_violators_then_small_bins_then_the_closest_pair() -> None:
    rows = [100.0, 100.0, 100.0, 100.0, 10.0]
    bads = [10.0, 5.0, 20.0, 30.0, 5.0]  # rates .10 .05 .20 .30 .50
    # rising risk: .10 then .05 violates -> pooled (.075); the 10-row bin joins its neighbour
    assert scorecard.coarse_classes(rows, bads, 1, 50, 10) == [[0, 1], [2], [3, 4]]
    # falling risk: everything pools into one bin (the data disagree with the business)
    assert scorecard.coarse_classes(rows, bads, -1, 50, 10) == [[0, 1, 2, 3, 4]]
    # no expectation: only the small bin joins (.50 is closer to .30 than to nothing)
    assert scorecard.coarse_classes(rows, bads, 0, 50, 10) == [[0], [1], [2], [3, 4]]
    # at most 3 bins: the pair with the closest rates merges (.10 and .05)
    assert scorecard.coarse_classes(rows, bads, 0, 50, 3) == [[0, 1], [2], [3, 4]]


def test_woe_and_information_value_by_hand() -> None:
    goods, bads = [90.0, 60.0], [10.0, 40.0]
    woe, iv = scorecard._woe(goods, bads)
    g = [(90.5) / 150.5, (60.5) / 150.5]
    b = [(10.5) / 50.5, (40.5) / 50.5]
    expected = [math.log(g[0] / b[0]), math.log(g[1] / b[1])]
    np.testing.assert_allclose(woe, expected, rtol=1e-12)
    assert iv == pytest.approx(sum((g[i] - b[i]) * expected[i] for i in range(2)), rel=1e-12)


def test_bins_of_values_codes_and_missing() -> None:
    cuts = np.array([0.5, 1.0])
    assert list(scorecard.bin_numeric([0.1, 0.5, 0.99, 1.0, 7.0, np.nan], cuts)) == [
        0,
        1,
        1,
        2,
        2,
        3,
    ]
    codes = np.array([0.0, 1.0, 2.0])
    assert list(scorecard.bin_codes([0.0, 2.0, -1.0, 5.0], codes)) == [0, 2, 3, 3]


# ---- the fitted scorecard --------------------------------------------------------------------
def test_bins_are_monotonic_where_the_business_expects_it(fitted: Any) -> None:
    model = base_estimator(fitted.pipeline)
    assert len(model.segments_) == 1  # the fixture's search chose one card (both are tested)
    by_name = {c["name"]: c for c in model.segments_[0]["characteristics"]}
    util = by_name["num__utilisation_m1"]
    assert util["trend"] == 1 and len(util["groups"]) >= 3
    n = len(util["groups"])
    rates = util["bins_bads"][:n] / (util["bins_goods"][:n] + util["bins_bads"][:n])
    assert (np.diff(rates) > 0).all(), rates  # risk rises with utilisation
    assert util["has_missing"]  # missing utilisation is a bin of its own, riskier than most
    assert util["bins_woe"][n] < np.median(util["bins_woe"][:n])
    pay = by_name["num__pay_amt_m1"]
    m = len(pay["groups"])
    pay_rates = pay["bins_bads"][:m] / (pay["bins_goods"][:m] + pay["bins_bads"][:m])
    assert pay["trend"] == -1 and (np.diff(pay_rates) < 0).all(), pay_rates
    assert scorecard._trend("num__bill_amt_m1") == 0 and scorecard._trend("num__x") == 0
    assert scorecard._trend("num__months_since_delinquency") == -1
    # information value ranks the characteristics: the noise column under the real ones
    iv = model.information_value_
    real = ("num__utilisation_m1", "num__delinquent_months", "num__pay_amt_m1")
    assert all(iv["num__bill_amt_m1"] < iv[name] for name in real), iv
    assert iv["num__bill_amt_m1"] < 0.1 * iv["num__utilisation_m1"]
    # every characteristic in the model has the right sign: points rise with WoE
    assert (model.segments_[0]["coef"] <= 0).all()
    x, y = portfolio(2000, 2)
    assert roc_auc_score(y, fitted.pipeline.predict_proba(x)[:, 1]) > 0.7


def test_the_points_table_adds_up_to_the_served_score(fitted: Any) -> None:
    scale = ScoreScale(base_score=650, base_odds=30, pdo=40)
    report = kind_report("scorecard", fitted.pipeline, scale)
    assert report is not None
    assert set(report.artifacts) == {"points_table.csv", "information_value.csv", "scorecard.json"}
    assert "## Scorecard" in report.card and "40 points to double the odds" in report.card
    model = base_estimator(fitted.pipeline)
    rows, bases = scorecard.points_table(model, _context(fitted, scale))
    ((label, base),) = bases.items()
    assert label == "all accounts" and {r["segment"] for r in rows} == {label}
    assert "education" in {r["characteristic"] for r in rows}
    categories = {r["bin"] for r in rows if r["characteristic"] == "education"}
    assert {"graduate", "high_school", "university"} <= {
        c.strip() for b in categories for c in b.split(",")
    }
    x, _ = portfolio(300, 3)
    pre = fitted.pipeline.named_steps["preprocess"]
    xt = np.asarray(pre.transform(x), dtype=np.float64)
    card = model.segments_[0]
    woe = scorecard.woe_matrix(xt, card["characteristics"])
    slope, _ = _context(fitted, scale).calibration
    points = base - scale.factor * slope * (woe @ card["coef"])
    pd_served = fitted.pipeline.predict_proba(x)[:, 1]
    np.testing.assert_allclose(
        points, scale.offset - scale.factor * logit(pd_served), rtol=0, atol=1e-8
    )
    assert (pd_to_score(pd_served, scale) == np.clip(np.rint(points), 300, 850)).all()
    # the table's rows are the points each bin gives (rounded to 2 decimals)
    util = [r for r in rows if r["characteristic"] == "utilisation_m1"]
    assert [r["bin"] for r in util][-1] == "missing" and util[0]["bin"].startswith("[-inf")
    assert (np.diff([r["points"] for r in util[:-1]]) <= 0).all()  # fewer as utilisation rises


def _context(fitted: Any, scale: ScoreScale) -> modelkinds.ReportContext:
    """The context training gives the report: the Platt map on top of the scorecard."""
    platt = fitted.pipeline.named_steps["model"].calibrated_classifiers_[0].calibrators[0]
    pre = fitted.pipeline.named_steps["preprocess"]
    columns = tuple(str(c) for c in pre.get_feature_names_out())
    return modelkinds.ReportContext(columns, (-platt.a_, -platt.b_), scale, pre)


def test_reasons_are_the_points_lost_and_the_compiled_scorer_agrees(fitted: Any) -> None:
    x, _ = portfolio(500, 4)
    x.loc[0, "education"] = "doctorate"  # a category training never saw: neutral, no crash
    pipeline = fitted.pipeline
    xt = np.asarray(pipeline.named_steps["preprocess"].transform(x), dtype=np.float64)
    model = base_estimator(pipeline)
    lost = KIND.contributions(model, xt, True)
    assert lost.shape == xt.shape and (lost >= -1e-12).all() and lost.max() > 0
    unused = [
        j
        for j, name in enumerate(pipeline.named_steps["preprocess"].get_feature_names_out())
        if name not in {c["name"] for c in model.segments_[0]["characteristics"]}
    ]
    assert (lost[:, unused] == 0).all()  # a column the model does not use costs no points
    # the compiled real-time scorer: the fitted pipeline's probabilities to 1e-9, same reasons
    scorer = compile_pipeline(pipeline, ScoringConfig(threshold=0.3))
    records = x.to_dict("records")
    online = scorer.score(records)
    batch = explain(pipeline, x, ScoringConfig(threshold=0.3))
    np.testing.assert_allclose([r["pd"] for r in online], batch.pd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        [r["pd"] for r in online], pipeline.predict_proba(x)[:, 1], rtol=0, atol=1e-9
    )
    assert [r["score"] for r in online] == list(batch.score)
    first = [r["reasons"][0]["name"] if r["reasons"] else None for r in online]
    assert first == list(batch.reasons[0])
    assert scorer.reason_method.startswith("points lost per characteristic")


def test_a_segmented_scorecard_has_a_card_per_segment() -> None:
    """Clean and delinquent accounts (delinquent_months >= 1) each get a card of their own:
    its own bins, coefficients and base points; a row is scored, explained and tabled by its
    segment's card only."""
    x, y = portfolio(4000, 7)
    x["delinquent_months"] = np.where(np.arange(4000) % 3 == 0, 0.0, x["delinquent_months"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        pipeline = modelkinds_pipeline(x, y, segmented=True)
    model = base_estimator(pipeline)
    assert model.segment_rule_["name"] == "num__delinquent_months"
    assert [c["label"] for c in model.segments_] == [
        "clean (delinquent_months < 1)",
        "delinquent (delinquent_months >= 1)",
    ]
    xt = np.asarray(pipeline.named_steps["preprocess"].transform(x), dtype=np.float64)
    segment = scorecard.segment_of(model, xt)
    np.testing.assert_array_equal(segment, (x["delinquent_months"] >= 1).to_numpy())
    assert sum(c["rows"] for c in model.segments_) == len(x)
    # each row's log-odds is its own card's: intercept + coefficients x its WoE values
    raw = scorecard.decision(model, xt)
    for k, card in enumerate(model.segments_):
        rows = segment == k
        expected = scorecard.woe_matrix(xt[rows], card["characteristics"]) @ card["coef"]
        np.testing.assert_allclose(raw[rows], expected + card["intercept"], rtol=0, atol=1e-12)
        assert (card["coef"] <= 0).all()
    # the delinquent card cannot split on delinquent_months = 0: its bins start at 1
    dirty = {c["name"]: c for c in model.segments_[1]["characteristics"]}
    if "num__delinquent_months" in dirty:
        assert dirty["num__delinquent_months"]["cuts"].min() > 1
    # reasons and the points table follow the row's card; the compiled scorer agrees
    scale = ScoreScale()
    report = kind_report("scorecard", pipeline, scale)
    assert report is not None and "2 card(s)" in report.card
    table = report.artifacts["points_table.csv"].splitlines()
    assert table[0].startswith("segment,characteristic,bin")
    assert {line.split(",")[0] for line in table[1:]} == {
        '"clean (delinquent_months < 1)"',
        '"delinquent (delinquent_months >= 1)"',
    }
    scorer = compile_pipeline(pipeline, ScoringConfig())
    online = scorer.score(x.head(200).to_dict("records"))
    np.testing.assert_allclose(
        [r["pd"] for r in online], pipeline.predict_proba(x.head(200))[:, 1], rtol=0, atol=1e-9
    )
    lost = KIND.contributions(model, xt, True)
    assert (lost >= -1e-12).all()
    # one card when asked, or when a segment would be too small to fit
    single = base_estimator(modelkinds_pipeline(x, y, segmented=False))
    assert single.segment_rule_ is None and len(single.segments_) == 1
    few = x.assign(delinquent_months=np.where(np.arange(4000) < 100, 2.0, 0.0))
    assert base_estimator(modelkinds_pipeline(few, y, segmented=True)).segment_rule_ is None


def modelkinds_pipeline(x: pd.DataFrame, y: np.ndarray, segmented: bool) -> Any:
    """The scorecard kind's pipeline with its default parameters but ``segmented``, fitted on
    every row (uncalibrated: the raw scorecard)."""
    params = {**KIND.default_params, "segmented": segmented}
    return configured_pipeline("scorecard", COLUMNS, params, 1.0).fit(x, y)


def test_a_scorecard_pickled_before_segments_reads_as_one_card(fitted: Any) -> None:
    model = base_estimator(fitted.pipeline)
    state = dict(model.__dict__)
    card = state.pop("segments_")[0]
    state.pop("segment_rule_"), state.pop("segmented")
    state.update(
        characteristics_=card["characteristics"],
        coef_woe_=card["coef"],
        intercept_woe_=card["intercept"],
    )
    old = scorecard.WoEScorecard.__new__(scorecard.WoEScorecard)
    old.__setstate__(state)
    x, _ = portfolio(100, 8)
    xt = np.asarray(fitted.pipeline.named_steps["preprocess"].transform(x), dtype=np.float64)
    np.testing.assert_array_equal(old.decision_function(xt), model.decision_function(xt))


def test_a_pickled_scorecard_scores_the_same(fitted: Any) -> None:
    x, _ = portfolio(50, 5)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        again = pickle.loads(dumps(fitted.pipeline))
        np.testing.assert_array_equal(
            again.predict_proba(x)[:, 1], fitted.pipeline.predict_proba(x)[:, 1]
        )
    assert type(base_estimator(fitted.pipeline)) is scorecard.WoEScorecard


def test_protected_attributes_never_become_characteristics() -> None:
    x, y = portfolio(1500, 6)
    x["sex"] = np.where(y == 1, "f", "m")  # perfectly predictive, and unlawful
    x["age"] = 30.0 + 10 * y
    chosen = select_inputs(x.columns, InputPolicy())
    assert set(chosen.protected) == {"sex", "age"}
    numeric = tuple(c for c in chosen.features if c != "education")
    fitted = fit_with_search(
        "scorecard",
        x[list(chosen.features)],
        y,
        FeatureColumns(numeric, ("education",)),
        SearchBudget(max_trials=1, cv_folds=2),
    )
    report = kind_report("scorecard", fitted.pipeline)
    assert report is not None
    characteristics = {
        line.split(",")[0] for line in report.artifacts["information_value.csv"].splitlines()[1:]
    }
    assert characteristics == set(chosen.features) and not {"sex", "age"} & characteristics
