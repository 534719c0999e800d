"""The shared feature definitions and month rules, run with the numpy backend (no JVM).

The Spark backend runs the same definitions in tests/etl/test_features.py (same expected values
as here) and tests/serving/test_raw_features.py compares the two backends row for row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest

from riskstream import featuredefs
from serving.rawfeatures import NumpyOps, build_rows, lookback_for
from tests.etl.helpers import A1_FEATURES, assert_features

pytestmark = pytest.mark.unit

MONTH_ENDS = ["2005-04-30", "2005-05-31", "2005-06-30", "2005-07-31", "2005-08-31", "2005-09-30"]


@pytest.mark.parametrize(
    ("obs", "opened", "months"),
    [
        (date(2005, 10, 1), date(2005, 3, 1), 7),  # same day of month: whole months
        (date(2024, 2, 29), date(2024, 1, 31), 1),  # both month ends: whole months
        (date(2024, 2, 28), date(2024, 1, 31), 0),  # 28 Feb 2024 is no month end
        (date(2024, 3, 15), date(2024, 1, 20), 1),  # 1 month and 26/31
        (date(2024, 3, 25), date(2024, 1, 20), 2),
        (date(2024, 1, 1), date(2023, 12, 31), 0),
    ],
)
def test_months_on_book_follows_spark_months_between(obs: date, opened: date, months: int) -> None:
    assert featuredefs.months_on_book(obs, opened) == months


@pytest.mark.parametrize(
    ("obs", "day", "lag"),
    [
        (date(2005, 10, 1), date(2005, 9, 30), 1),
        (date(2005, 10, 1), date(2005, 9, 1), 1),
        (date(2005, 10, 1), date(2005, 8, 31), 2),
        (date(2024, 7, 17), date(2024, 7, 16), 1),  # obs mid-month: m1 is obs's own month
        (date(2024, 7, 17), date(2024, 6, 30), 2),
        (date(2024, 1, 1), date(2023, 7, 5), 6),
    ],
)
def test_month_lag(obs: date, day: date, lag: int) -> None:
    assert featuredefs.month_index(obs, day) == lag


def test_default_observation_date_is_the_month_after_the_last_statement() -> None:
    assert featuredefs.default_obs_date([date(2025, 3, 31), date(2025, 12, 31)], []) == date(
        2026, 1, 1
    )
    assert featuredefs.default_obs_date([], [date(2025, 6, 3)]) == date(2025, 7, 1)


def test_numpy_ops_null_rules() -> None:
    ops = NumpyOps({})
    nan = np.nan
    assert np.array_equal(ops.greatest(np.array([nan, 1.0]), 0.0), [0.0, 1.0])  # null skipped
    assert np.array_equal(ops.coalesce(np.array([nan, 2.0]), 5.0), [5.0, 2.0])
    assert np.isnan(ops.when(np.array([False]), 1.0)[0])
    assert list(ops.is_true(np.array([nan, 2.0]) >= 1)) == [False, True]
    assert lookback_for(["bill_amt_m1", "pay_to_bill_m5"]) == 6
    assert lookback_for(["bill_amt_m12"]) == 12


def _a1() -> dict:
    statements, payments, purchases = [], [], []
    for i, end in enumerate(MONTH_ENDS):
        statements.append(
            {
                "statement_date": date.fromisoformat(end),
                "balance": 1000.0 * (i + 1),
                "minimum_due": 350.0,
                "repayment_status": i - 1,
                "credit_limit": None,
            }
        )
        payments.append({"date": date.fromisoformat(end[:8] + "15"), "amount": 100.0 * (i + 1)})
        category = "grocery" if i % 2 else "fuel"
        purchases.append(
            {
                "date": date.fromisoformat(end[:8] + "10"),
                "amount": 10.0 * (i + 1),
                "merchant_category": category,
            }
        )
    return {
        "opened_on": date(2005, 3, 1),
        "credit_limit": 10000.0,
        "attributes": {"Region": "N"},
        "statements": statements,
        "payments": payments,
        "purchases": purchases,
    }


def test_the_etl_feature_example_with_the_numpy_backend() -> None:
    """tests/etl/test_features.py's account A1, same expected values."""
    a1, a2 = build_rows([_a1(), {"opened_on": date(2005, 3, 1), "credit_limit": 5000.0}])
    assert a1["obs_date"] == date(2005, 10, 1)  # the default: the month after the last statement
    assert_features(a1, A1_FEATURES)
    # no statement: unknown levels, zero sums, null ratios
    assert a2["obs_date"] == date(2005, 4, 1)
    assert (a2["bill_amt_m1"], a2["pay_amt_m1"], a2["statement_count"]) == (None, 0.0, 0)
    assert (a2["months_since_delinquency"], a2["longest_delinquent_run"]) == (None, 0)
    assert (a2["spend_6m"], a2["spend_share_fuel"], a2["bill_volatility"]) == (0.0, None, None)
    assert a2["credit_limit"] == 5000.0


def test_a_correction_replaces_the_statement_of_its_month() -> None:
    app = _a1()
    fixed = dict(app["statements"][-1], balance=6100.0)
    app["statements"] = [*app["statements"], fixed]  # same date, later in the list
    assert build_rows([app])[0]["bill_amt_m1"] == 6100.0


def _app_with(features: list[str], model: str = "lr") -> Any:
    """The real API app (no server, no registry) serving a small champion on ``features``."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from riskstream.settings import Settings
    from serving.api import create_app
    from serving.registry import Champion
    from serving.service import prepare

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f: rng.normal(size=200) for f in features})
    label = (frame[features[0]] + rng.normal(size=200) > 0).astype(int)
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", "passthrough", features)])),
            ("model", LogisticRegression()),
        ]
    )
    pipeline.fit(frame, label)
    app = create_app(Settings(), ttl=3600)
    app.state.holder.current = prepare(Champion("t", "1", None, pipeline, {}, None, []))
    return app


def _post(app: Any, body: dict) -> Any:
    import asyncio

    import httpx

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/score", json=body)

    return asyncio.run(call())


RAW = {
    "opened_on": "2025-01-10",
    "credit_limit": 5000.0,
    "statements": [
        {"statement_date": "2025-05-31", "balance": 1200.0, "minimum_due": 50.0},
        {"statement_date": "2025-06-30", "balance": 1500.0, "minimum_due": 60.0},
    ],
    "payments": [{"date": "2025-06-12", "amount": 100.0}],
}


def test_the_raw_form_refuses_what_it_cannot_score_by_name() -> None:
    app = _app_with(["credit_limit", "bill_amt_m1", "utilisation_m1"])
    ok = _post(app, {"raw_applications": [RAW]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"][0]["features"]["utilisation_m1"] == 0.3
    # a logistic regression without an imputer takes no null: no statements -> null bills
    bare = _post(app, {"raw_applications": [dict(RAW, statements=[])]})
    assert bare.status_code == 422
    assert bare.json()["detail"][0]["loc"] == ["body", "raw_applications", 0, "statements"]
    assert "bill_amt_m1" in bare.json()["detail"][0]["msg"]
    # protected facts are no input of this champion: refused by name
    sex = _post(app, {"raw_applications": [dict(RAW, sex="F", marital_status="single")]})
    assert sex.status_code == 422
    assert {tuple(e["loc"][-1:]) for e in sex.json()["detail"]} == {("sex",), ("marital_status",)}
    assert all("protected attribute" in e["msg"] for e in sex.json()["detail"])
    # a feature the features job does not compute: use the precomputed form
    other = _app_with(["credit_limit", "bureau_score"])
    refused = _post(other, {"raw_applications": [RAW]})
    assert refused.status_code == 422 and "bureau_score" in refused.text
