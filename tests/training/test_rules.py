"""Pure rules: feature columns, labelled rows, the split, promotion, the model search."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from riskstream import names
from training.dataset import TrainingDataError, feature_columns, labelled, split_rows
from training.delong import auc_ci, paired_test
from training.models import ModelError, SearchBudget, feature_importance, fit_with_search
from training.promotion import PromotionPolicy, decide

pytestmark = pytest.mark.unit


def _frame(labels: list[object], dates: list[dt.date] | None = None) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "obs_date": dates or [dt.date(2024, 1, 31)] * n,
            "label": labels,
            "source": "test",
            "x": np.arange(n, dtype=float),
            "segment": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
        }
    )


def test_feature_columns_split_numeric_and_strings() -> None:
    cols = feature_columns(_frame([0, 1]))
    assert cols.numeric == ("x",)
    assert cols.categorical == ("segment",)


def test_empty_table_fails_clearly() -> None:
    with pytest.raises(TrainingDataError, match="no labelled rows"):
        labelled(_frame([None, None]), "s3://b/features")


def test_one_class_fails_clearly() -> None:
    with pytest.raises(TrainingDataError, match=r"only one class \(0\) in 3 rows"):
        labelled(_frame([0, 0, 0]), "s3://b/features")


def test_unknown_labels_are_dropped_and_bad_labels_named() -> None:
    assert len(labelled(_frame([0, 1, None, 1]), "t")) == 3
    with pytest.raises(TrainingDataError, match=r"found values \[0, 1, 2\]"):
        labelled(_frame([0, 1, 2]), "t")


def test_stratified_split_holds_out_a_third_with_both_classes() -> None:
    frame = _frame([0] * 60 + [1] * 30)
    split = split_rows(frame, seed=7)
    assert split.strategy == names.SPLIT_RANDOM
    assert len(split.test_index) == 30
    assert frame["label"].to_numpy()[split.test_index].sum() == 10
    assert not set(split.train_index) & set(split.test_index)
    assert split.description["test_rows"] == 30


def test_several_observation_dates_split_out_of_time() -> None:
    dates = [dt.date(2024, 1, 31)] * 6 + [dt.date(2024, 2, 29)] * 4
    split = split_rows(_frame([0, 1] * 5, dates))
    assert split.strategy == names.SPLIT_OUT_OF_TIME
    assert list(split.test_index) == [6, 7, 8, 9]
    assert split.description["test_obs_dates"] == ["2024-02-29"]


def _panel(accounts: int, months: int, seed: int = 0) -> pd.DataFrame:
    """Every account observed on each of ``months`` month starts, a default now and then."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "account_id": f"a{a}",
            "obs_date": dt.date(2024, m + 1, 1),
            "label": int(rng.random() < 0.2),
        }
        for a in range(accounts)
        for m in range(months)
    ]
    frame = pd.DataFrame(rows)
    frame["source"], frame["x"] = "test", rng.normal(size=len(frame))
    return frame


@pytest.mark.parametrize("strategy", names.SPLIT_STRATEGIES)
def test_no_account_is_in_both_train_and_test(strategy: str) -> None:
    frame = _panel(60, 6)
    split = split_rows(frame, strategy=strategy)
    ids = frame["account_id"].to_numpy()
    assert not set(ids[split.train_index]) & set(ids[split.test_index])
    assert not set(ids[split.train_index]) & set(ids[split.in_time_index])


def test_out_of_time_tests_the_latest_dates_and_checks_in_time() -> None:
    frame = _panel(60, 6)
    split = split_rows(frame)  # the default: out of time
    days = frame["obs_date"].astype(str).to_numpy()
    assert split.strategy == names.SPLIT_OUT_OF_TIME
    assert sorted(set(days[split.test_index])) == ["2024-05-01", "2024-06-01"]  # 2 of 6 dates
    assert max(days[split.train_index]) == "2024-04-01" == max(days[split.in_time_index])
    held = set(frame["account_id"].to_numpy()[split.test_index])
    assert len(held) == 20  # a third of the accounts
    assert split.description["unused_rows"] == 40 * 2  # the trained accounts' latest dates
    assert len(split.train_index) == 40 * 4 and len(split.in_time_index) == 20 * 4


def test_random_split_is_a_documented_option_keeping_accounts_whole() -> None:
    frame = _panel(60, 6)
    split = split_rows(frame, strategy=names.SPLIT_RANDOM)
    assert split.strategy == names.SPLIT_RANDOM and len(split.in_time_index) == 0
    assert len(split.test_index) == 20 * 6
    with pytest.raises(TrainingDataError, match="split strategy 'by_month' is not known"):
        split_rows(frame, strategy="by_month")


def test_out_of_time_split_with_one_class_in_test_fails() -> None:
    dates = [dt.date(2024, 1, 31)] * 4 + [dt.date(2024, 2, 29)] * 2
    with pytest.raises(TrainingDataError, match="test part of the out_of_time split"):
        split_rows(_frame([0, 1, 0, 1, 0, 0], dates))


POLICY = PromotionPolicy(alpha=0.05, min_ks=0.2, max_ece=0.05)
GOOD = {"roc_auc": 0.80, "ks": 0.45, "ece": 0.02}


def _scores(n: int, noise_a: float, noise_b: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = rng.normal(size=n)
    a = y + noise_a * base + 0.3 * rng.normal(size=n)
    b = y + noise_b * base + 0.3 * rng.normal(size=n)
    return y, a, b


def test_first_model_is_promoted_when_it_passes_gates() -> None:
    d = decide(GOOD, POLICY)
    assert d.promote and "no champion yet" in d.reason and d.outcome == "promoted"


def test_significantly_better_challenger_is_promoted() -> None:
    y, a, b = _scores(3000, 0.8, 1.2)
    test = paired_test(y, a, b)
    assert test.diff > 0 and test.p_one_sided < 0.001
    d = decide(GOOD, POLICY, champion_version="3", test=test)
    assert d.promote and "significantly better" in d.reason and "DeLong" in d.reason
    tags = d.tags()
    assert tags["decision"] == "promoted" and float(tags["delong_p_one_sided"]) < 0.001
    assert tags["promotion_test"] == "delong_1988_paired"


def test_better_but_not_significant_keeps_the_champion() -> None:
    y, a, b = _scores(300, 1.0, 1.1, seed=3)
    test = paired_test(y, a, b)
    assert test.diff > 0 and test.p_one_sided > 0.05
    d = decide(GOOD, POLICY, champion_version="3", test=test)
    assert not d.promote and "better but not significantly" in d.reason
    assert d.outcome == "kept_champion" and d.tags()["delong_z"]


def test_equal_models_tie_goes_to_the_champion() -> None:
    y, a, _ = _scores(500, 1.0, 1.0)
    test = paired_test(y, a, a)
    assert test.diff == 0 and test.z == 0
    d = decide(GOOD, POLICY, champion_version="2", test=test)
    assert not d.promote and "not better" in d.reason


def test_unevaluable_champion_blocks_promotion() -> None:
    d = decide(GOOD, POLICY, champion_version="4", champion_error="KeyError: 'sex'")
    assert not d.promote and d.outcome == "blocked_unevaluable"
    assert "KeyError: 'sex'" in d.reason and "promote_override" in d.reason


def test_override_promotes_and_is_recorded() -> None:
    policy = PromotionPolicy(alpha=0.05, min_ks=0.2, max_ece=0.05, override=True)
    d = decide(GOOD, policy, champion_version="4", champion_error="broken artifact")
    assert d.promote and d.outcome == "overridden" and "override" in d.reason
    assert d.tags()["decision"] == "overridden"
    # The override does not bypass the gates.
    bad = decide({"roc_auc": 0.9, "ks": 0.1, "ece": 0.01}, policy, "4", champion_error="x")
    assert not bad.promote


def test_delong_matches_roc_auc_and_known_variance() -> None:
    from sklearn.metrics import roc_auc_score

    y, a, b = _scores(400, 1.0, 1.5, seed=5)
    test = paired_test(y, a, b)
    assert test.auc_a == pytest.approx(roc_auc_score(y, a))
    assert test.auc_b == pytest.approx(roc_auc_score(y, b))
    auc, low, high = auc_ci(y, a)
    assert low < auc < high and high - low < 0.12
    # Hanley-McNeil-free check: a tiny hand example (DeLong's V10/V01 by enumeration).
    yy = np.array([1, 1, 0, 0, 0])
    pp = np.array([0.9, 0.4, 0.5, 0.2, 0.1])
    v10 = np.array([1.0, 2 / 3])  # share of negatives each positive beats
    v01 = np.array([0.5, 1.0, 1.0])  # share of positives beating each negative
    se = np.sqrt(v10.var(ddof=1) / 2 + v01.var(ddof=1) / 3)
    auc, low, _ = auc_ci(yy, pp)
    assert auc == pytest.approx(5 / 6)
    assert auc - low == pytest.approx(1.959964 * se, rel=1e-4)
    with pytest.raises(ValueError, match="not the same rows"):
        paired_test(yy, pp, pp[:3])


@pytest.mark.parametrize(
    ("metrics", "needle"),
    [
        ({"roc_auc": 0.9, "ks": 0.1, "ece": 0.01}, "KS 0.1000 is below the minimum"),
        ({"roc_auc": 0.9, "ks": 0.5, "ece": 0.2}, "ECE) 0.2000 exceeds the cap"),
    ],
)
def test_gates_block_promotion_even_without_champion(metrics: dict, needle: str) -> None:
    d = decide(metrics, POLICY)
    assert not d.promote and needle in d.reason


def test_search_rejects_one_class_and_respects_trial_cap() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"x": rng.normal(size=400), "segment": rng.choice(["a", "b"], 400)})
    y = (x["x"] + rng.normal(scale=0.5, size=400) > 0.8).astype(int).to_numpy()
    cols = feature_columns(x)
    with pytest.raises(ModelError, match="one class"):
        fit_with_search("lr", x, np.zeros(400), cols)
    fitted = fit_with_search("lr", x, y, cols, SearchBudget(seconds=60, max_trials=3))
    assert len(fitted.trials) == 3 and fitted.stopped_by == "trials"
    p = fitted.pipeline.predict_proba(x)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    assert list(fitted.pipeline.named_steps) == ["preprocess", "model"]
    assert feature_importance(fitted.pipeline).index[0].endswith("x")


def test_search_stops_on_time_budget() -> None:
    ticks = iter(range(0, 10_000, 10))  # every clock read advances 10 "seconds"
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"x": rng.normal(size=300)})
    y = (x["x"] > 0.5).astype(int).to_numpy()
    fitted = fit_with_search(
        "lr",
        x,
        y,
        feature_columns(x),
        SearchBudget(seconds=25, max_trials=10),
        clock=lambda: next(ticks),
    )
    assert fitted.stopped_by == "time"
    assert 1 <= len(fitted.trials) < 10


def test_unknown_model_is_named() -> None:
    x = pd.DataFrame({"x": [0.0, 1.0] * 10})
    with pytest.raises(ModelError, match="unknown model 'svm'"):
        fit_with_search("svm", x, np.array([0, 1] * 10), feature_columns(x))


def test_a_panel_trains_with_folds_grouped_by_account() -> None:
    """With ``groups`` (an account per row) the search's inner split and the out-of-fold folds
    are stratified group folds: each account's rows stay on one side."""
    from sklearn.model_selection import StratifiedGroupKFold

    frame = _panel(90, 4, seed=3)
    frame["x"] = frame["x"] + 2.0 * frame["label"]
    cols = feature_columns(frame[["x"]])
    groups = frame["account_id"].to_numpy()
    y = frame["label"].to_numpy()
    budget = SearchBudget(max_trials=1, cv_folds=3)
    fitted = fit_with_search("lr", frame[["x"]], y, cols, budget, groups=groups)
    assert fitted.extra["cv_roc_auc"] > 0.8 and fitted.extra["fit_rows"] == len(frame)
    # the inner split it used: the first of 4 stratified group folds with the budget's seed
    inner = StratifiedGroupKFold(4, shuffle=True, random_state=budget.seed)
    fit_idx, val_idx = next(inner.split(np.zeros(len(y)), y, groups))
    assert fitted.extra["search_validation_rows"] == len(val_idx)
    assert not set(groups[fit_idx]) & set(groups[val_idx])
