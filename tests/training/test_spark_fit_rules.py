"""When training goes past one machine, and what the protocol does then (no Spark started: the
refit below fits on this machine through the same hook the Spark fit uses)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from riskstream import names
from riskstream.settings import Settings, SettingsError
from training.dataset import feature_columns
from training.models import Refit, SearchBudget, fit_with_search
from training.spark_fit import fits_on_spark, is_local_master

pytestmark = pytest.mark.unit

CLUSTER = Settings(spark_master="spark://127.0.0.1:7077", spark_training_min_rows=1000)


@pytest.mark.parametrize(
    ("settings", "kind", "rows", "expected"),
    [
        (CLUSTER, "xgb", 1000, True),
        (CLUSTER, "xgb", 999, False),  # below the threshold
        (CLUSTER, "rf", 10**6, False),  # a kind without a Spark fit
        (CLUSTER.with_overrides(spark_master="local[2]"), "xgb", 10**6, False),  # one machine
        (Settings(spark_master="spark://10.0.0.5:7077"), "xgb", 10**6, False),  # the default
    ],
)
def test_where_a_kind_fits(settings: Settings, kind: str, rows: int, expected: bool) -> None:
    assert fits_on_spark(settings, kind, rows) is expected


def test_local_masters_are_this_machine() -> None:
    assert [is_local_master(m) for m in ("local", "local[*]", "local-cluster[2,1,1024]")] == [
        True
    ] * 3
    assert not is_local_master("spark://127.0.0.1:7077")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RISKSTREAM_SPARK_TRAINING_MIN_ROWS": "0"}, "RISKSTREAM_SPARK_TRAINING_MIN_ROWS=0"),
        ({"RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS": "10"}, "RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS"),
        ({"RISKSTREAM_SPARK_TRAINING_MIN_ROWS": "many"}, "not an integer"),
    ],
)
def test_bad_thresholds_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping(env)


def _table(n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    x.loc[::9, "z"] = np.nan
    y = (x["x"] + rng.normal(scale=0.7, size=n) > 0.9).astype(int).to_numpy()
    return x, y


def test_a_refit_runs_the_same_protocol_through_its_hook() -> None:
    """A refit whose fit is the estimator's own, searching all rows, gives the very model the
    single-machine path gives; it is called for every out-of-fold fit and the final refit."""
    x, y = _table()
    budget = SearchBudget(seconds=600, max_trials=2, cv_folds=2)
    calls: list[int] = []

    def here(estimator: Any, t: np.ndarray, labels: np.ndarray) -> Any:
        calls.append(len(t))
        return estimator.fit(t, labels)

    plain = fit_with_search("xgb", x, y, feature_columns(x), budget)
    hooked = fit_with_search(
        "xgb", x, y, feature_columns(x), budget, refit=Refit(here, len(x), "test", {"on": 1})
    )
    assert calls == [300, 300, 600]  # two folds, then all rows
    assert hooked.best_params == plain.best_params
    np.testing.assert_array_equal(hooked.pipeline.predict_proba(x), plain.pipeline.predict_proba(x))
    assert plain.extra["fit_engine"] == names.FIT_ONE_MACHINE and plain.extra["fit_where"] == {}
    assert hooked.extra["fit_engine"] == "test" and hooked.extra["fit_where"] == {"on": 1}


def test_past_one_machine_the_search_runs_on_a_sample() -> None:
    x, y = _table()
    refit = Refit(lambda e, t, labels: e.fit(t, labels), 200, "test")
    fitted = fit_with_search(
        "xgb", x, y, feature_columns(x), SearchBudget(max_trials=1, cv_folds=2), refit=refit
    )
    assert fitted.extra["search_rows"] == 200
    assert fitted.extra["search_fit_rows"] + fitted.extra["search_validation_rows"] == 200
    assert fitted.extra["fit_rows"] == len(x)  # the refit sees every training row
