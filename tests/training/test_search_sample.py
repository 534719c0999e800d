"""The search's sample on a large table (training.models.search_sample, the local path's
RISKSTREAM_TRAINING_SEARCH_ROWS): whole accounts, stratified, the same for the same seed, and
only above the threshold; the refit sees every row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.dataset import feature_columns
from training.models import SearchBudget, fit_with_search, search_sample

pytestmark = pytest.mark.unit


def _panel(accounts: int = 600, per: int = 8, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``per`` rows per account; about 10% of the accounts default in one of their rows."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.array([f"A{i:05d}" for i in range(accounts)]), per)
    y = np.zeros(accounts * per, dtype=int)
    bad = np.flatnonzero(rng.random(accounts) < 0.1)
    y[bad * per + rng.integers(0, per, len(bad))] = 1
    return y, groups


def test_the_sample_holds_whole_accounts() -> None:
    y, groups = _panel()
    kept = search_sample(y, 1200, seed=42, groups=groups)
    chosen = set(groups[kept])
    assert len(kept) == 8 * len(chosen)  # every row of a chosen account, none of the others
    assert set(groups[np.setdiff1d(np.arange(len(y)), kept)]).isdisjoint(chosen)
    assert len(kept) == 1200  # 150 accounts of 8 rows
    assert np.all(np.diff(kept) > 0)  # in order


def test_the_sample_is_stratified_by_account() -> None:
    y, groups = _panel()
    kept = search_sample(y, 1200, seed=42, groups=groups)
    ever = pd.Series(y).groupby(groups).max()
    share_all = ever.mean()
    share_kept = ever.loc[sorted(set(groups[kept]))].mean()
    assert abs(share_kept - share_all) <= 1 / 150  # within one account of the population's


def test_the_sample_is_deterministic_and_seeded() -> None:
    y, groups = _panel()
    first = search_sample(y, 1200, seed=42, groups=groups)
    np.testing.assert_array_equal(first, search_sample(y, 1200, seed=42, groups=groups))
    assert not np.array_equal(first, search_sample(y, 1200, seed=7, groups=groups))


def test_at_or_below_the_threshold_every_row() -> None:
    y, groups = _panel(accounts=50)
    np.testing.assert_array_equal(search_sample(y, 400, 42, groups), np.arange(400))
    np.testing.assert_array_equal(search_sample(y, 10_000, 42), np.arange(400))


def test_without_accounts_an_exact_stratified_sample() -> None:
    y, _ = _panel()
    kept = search_sample(y, 1000, seed=42)
    assert len(kept) == 1000
    assert abs(y[kept].mean() - y.mean()) < 0.002


def _table(groups: np.ndarray, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(groups)
    x = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    y = (x["x"] + rng.normal(scale=0.7, size=n) > 1.0).astype(int).to_numpy()
    return x, y


def test_the_search_uses_the_sample_only_above_the_threshold() -> None:
    _, groups = _panel(accounts=150)
    x, y = _table(groups)
    budget = SearchBudget(max_trials=2, cv_folds=2, search_rows=400)
    sampled = fit_with_search("lr", x, y, feature_columns(x), budget, groups=groups)
    assert sampled.extra["search_rows"] == 400  # 50 whole accounts
    assert sampled.extra["search_fit_rows"] + sampled.extra["search_validation_rows"] == 400
    assert sampled.extra["fit_rows"] == len(x)  # the refit sees every row
    whole = fit_with_search(
        "lr", x, y, feature_columns(x), SearchBudget(max_trials=2, cv_folds=2), groups=groups
    )
    assert whole.extra["search_rows"] == len(x)
    roomy = SearchBudget(max_trials=2, cv_folds=2, search_rows=len(x))
    same = fit_with_search("lr", x, y, feature_columns(x), roomy, groups=groups)
    assert same.best_params == whole.best_params and same.extra["search_rows"] == len(x)


def test_a_threshold_below_100_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="search_rows=10"):
        SearchBudget(search_rows=10)


def test_what_the_trial_fixed_is_fixed_again_on_every_row() -> None:
    """XGBoost's rounds (early stopping) found on the sample are found again on every row's
    inner split; a kind whose trial fixes nothing is not fitted again."""
    _, groups = _panel(accounts=150)
    x, y = _table(groups)
    budget = SearchBudget(max_trials=1, cv_folds=2, search_rows=400)
    xgb = fit_with_search("xgb", x, y, feature_columns(x), budget, groups=groups)
    assert xgb.extra["search_settled_on_all_rows"] is True
    assert xgb.best_params["n_estimators"] != xgb.trials[0].params["n_estimators"]
    lr = fit_with_search("lr", x, y, feature_columns(x), budget, groups=groups)
    assert lr.extra["search_settled_on_all_rows"] is False
