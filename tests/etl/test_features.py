"""curated -> features on a few accounts: exact values, windows, no leakage, scoring shape."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from etl import chain, features
from tests.etl.helpers import (
    A1_FEATURES,
    assert_features,
    line,
    lines_frame,
    opened,
    outcome,
    payment,
    purchase,
    statement,
)

pytestmark = pytest.mark.integration  # Spark: a JVM, with S3A pointed at the session's moto server
OBS = date(2005, 10, 1)
MONTH_ENDS = ["2005-04-30", "2005-05-31", "2005-06-30", "2005-07-31", "2005-08-31", "2005-09-30"]


def _history() -> list[dict[str, Any]]:
    """A1: six statements/payments/purchases, defaults in October. A2: opened only, no default."""
    events: list[dict[str, Any]] = [
        opened(1, "A1", "2005-03-01", attributes={"Region": "N", "score": 3}),
        opened(2, "A2", "2005-03-01", attributes={"Region": "S", "score": 4.5}),
    ]
    n = 10
    for i, month_end in enumerate(MONTH_ENDS):
        n += 3
        events.append(
            statement(n, "A1", month_end, 1000.0 * (i + 1), status=i - 1, minimum_due=350)
        )
        events.append(payment(n + 1, "A1", month_end[:8] + "15", 100.0 * (i + 1)))
        category = "grocery" if i % 2 else "fuel"
        events.append(purchase(n + 2, "A1", month_end[:8] + "10", 10.0 * (i + 1), category))
    events.append(outcome(90, "A1", "2005-10-31", 1))
    events.append(outcome(91, "A2", "2005-10-31", 0))
    return events


def _tables(spark: SparkSession, events: list[Any]) -> dict[str, DataFrame]:
    rows = [(line(e), str(e["event_time"])[:10], "f") for e in events]
    lines = lines_frame(spark, rows)
    return chain.curate(lines, datetime(2026, 1, 1, tzinfo=UTC))


def _build(tables: dict[str, DataFrame], obs: list[date], **kwargs: Any) -> DataFrame:
    attrs = features.attribute_columns(tables["account_opened"])
    windows = kwargs.pop("windows", None)
    return chain.features_of(tables, obs, windows, attributes=attrs, **kwargs)


def _rows(frame: DataFrame) -> dict[str, dict[str, Any]]:
    return {r["account_id"]: r.asDict() for r in frame.collect()}


@pytest.fixture(scope="module")
def history(spark: SparkSession) -> dict[str, DataFrame]:
    return _tables(spark, _history())


# The feature table's plan is wide (every feature a column of joins, windows and aggregates):
# planning and running it takes Spark seconds even on two accounts, so the tests that look at the
# same table (the full history at OBS) share one build and one collect.
@pytest.fixture(scope="module")
def at_obs(history: dict[str, DataFrame]) -> DataFrame:
    """The features of the full history at OBS."""
    return _build(history, [OBS])


@pytest.fixture(scope="module")
def at_obs_rows(at_obs: DataFrame) -> dict[str, dict[str, Any]]:
    return _rows(at_obs)


def test_features_of_a_full_history_are_exact(at_obs_rows: dict[str, dict[str, Any]]) -> None:
    rows = at_obs_rows
    a1 = rows["A1"]
    assert a1["obs_date"] == OBS
    assert a1["label"] == 1
    assert_features(a1, A1_FEATURES)
    assert a1["spend_share_fuel"] == pytest.approx(90 / 210)
    assert a1["attr_score"] == 3.0

    a2 = rows["A2"]
    assert a2["label"] == 0
    assert a2["bill_amt_m1"] is None  # no statement: unknown, not zero
    assert a2["pay_amt_m1"] == 0.0  # no payment: paid nothing
    assert (a2["spend_6m"], a2["spend_share_fuel"]) == (0.0, None)
    assert (a2["attr_region"], a2["attr_score"]) == ("S", 4.5)
    # No statement: no delinquency seen, nothing paid in full, ratios unknown (null).
    assert (a2["months_since_delinquency"], a2["longest_delinquent_run"]) == (None, 0)
    assert (a2["paid_in_full_count"], a2["unpaid_to_limit_m1"], a2["bill_volatility"]) == (
        0,
        None,
        None,
    )


def test_contract_columns_and_types(at_obs: DataFrame) -> None:
    frame = at_obs
    types = dict(frame.dtypes)
    assert frame.columns[:4] == ["account_id", "obs_date", "label", "source"]
    assert (types["account_id"], types["obs_date"], types["label"]) == ("string", "date", "int")
    for name, kind in frame.dtypes[4:]:
        assert kind in ("double", "int", "string"), (name, kind)


def test_an_event_after_obs_date_changes_no_feature(
    spark: SparkSession, at_obs_rows: dict[str, dict[str, Any]]
) -> None:
    late = [
        statement(200, "A1", "2005-10-31", 99999.0, status=8),
        payment(201, "A1", "2005-10-01", 5555.0),
        purchase(202, "A1", "2005-10-02", 777.0, "travel"),
        opened(203, "A3", "2005-10-05"),
    ]
    after = _build(_tables(spark, _history() + late), [OBS])
    assert _rows(after) == at_obs_rows  # the history's own features at OBS


def test_label_comes_only_from_the_performance_window(spark: SparkSession) -> None:
    events = _history()
    events[-2] = outcome(90, "A1", "2005-12-15", 1)  # outside the default one-month window
    tables = _tables(spark, events)
    assert _rows(_build(tables, [OBS]))["A1"]["label"] is None  # unknown, not 0
    wider = features.FeatureWindows(performance_months=3)
    assert _rows(_build(tables, [OBS], windows=wider))["A1"]["label"] == 1


def test_scoring_features_have_a_null_label(history: dict[str, DataFrame]) -> None:
    rows = _rows(_build(history, [OBS], with_label=False))
    assert {r["label"] for r in rows.values()} == {None}
    assert rows["A1"]["bill_amt_m1"] == 6000


def test_immature_window_gives_null_labels(history: dict[str, DataFrame]) -> None:
    rows = _rows(_build(history, [OBS], labels_known_on=date(2005, 10, 20)))
    assert {r["label"] for r in rows.values()} == {None}


def test_several_observation_dates_and_population(history: dict[str, DataFrame]) -> None:
    frame = _build(history, [OBS, date(2005, 7, 1), date(2005, 3, 1), date(2005, 12, 1)])
    rows = frame.collect()  # once: every check below reads these rows
    keys = sorted((r["account_id"], r["obs_date"].isoformat()) for r in rows)
    # Nobody is open before 2005-03-01; A1 defaulted in October so is gone by December.
    assert keys == [
        ("A1", "2005-07-01"),
        ("A1", "2005-10-01"),
        ("A2", "2005-07-01"),
        ("A2", "2005-10-01"),
        ("A2", "2005-12-01"),
    ]
    july = {r["account_id"]: r for r in rows if r["obs_date"] == date(2005, 7, 1)}
    assert july["A1"]["bill_amt_m1"] == 3000  # June's statement is m1 at 1 July
    assert july["A1"]["bill_amt_m4"] is None  # March had no statement


def test_default_observation_date_is_derived_from_the_data(
    history: dict[str, DataFrame],
) -> None:
    assert features.default_observation_date(history["statement"], history["outcome"]) == OBS


def test_windows_are_checked() -> None:
    with pytest.raises(ValueError, match="performance_months=0"):
        features.FeatureWindows(performance_months=0)


def test_attribute_names_are_safe() -> None:
    assert features.attribute_name("Credit Score (%)") == "attr_credit_score"
