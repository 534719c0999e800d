"""The raw application form computes the features the Spark job computes, and scores the same.

A small synthetic portfolio goes through the real ETL transforms and ``etl.features
.build_features``; each account's raw facts, taken from its curated events, go through
``serving.rawfeatures`` and through ``POST /score``'s raw form; both must equal the offline
feature row and its score (precomputed form and the scorer ``GET /accounts/{id}/score`` uses).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl import chain
from ingestion.synthetic import SyntheticConfig, simulate
from riskstream.events import serialize
from riskstream.settings import Settings
from serving.api import create_app
from serving.rawfeatures import build_rows
from serving.registry import Champion
from serving.service import prepare
from tests.etl.conftest import spark  # noqa: F401  (the session's Spark fixture)
from tests.etl.helpers import lines_frame

pytestmark = pytest.mark.integration  # Spark: a JVM

CONFIG = SyntheticConfig(accounts=160, months=9, seed=5, start=dt.date(2024, 1, 1))
MID_OBS = dt.date(2024, 7, 17)  # mid-month: partial windows, months on book off month ends
PROTECTED = ("age", "sex", "marital_status")
MODEL_FEATURES = [
    "credit_limit",
    "income",
    "months_on_book",
    *[f"bill_amt_m{k}" for k in range(1, 7)],
    *[f"pay_amt_m{k}" for k in range(1, 7)],
    *[f"repayment_status_m{k}" for k in range(1, 7)],
    "utilisation_avg_3m",
    "utilisation_avg_6m",
    "pay_to_bill_avg",
    "missed_minimum_count",
    "longest_delinquent_run",
    "unpaid_to_limit_avg",
    "bill_volatility",
    "spend_3m",
    "spend_6m",
    "purchase_count_6m",
    "status_delta_1m",
    "education",
]


def _tables(spark: SparkSession) -> dict[str, DataFrame]:  # noqa: F811
    events = list(simulate(CONFIG).events())
    rows = [(serialize(e).decode(), str(e["event_time"])[:10], "f") for e in events]
    lines = lines_frame(spark, rows)
    return chain.curate(lines, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


def raw_facts(tables: dict[str, DataFrame]) -> dict[str, dict[str, Any]]:
    """Each account's raw application, from its curated events (as a caller would send it)."""
    apps: dict[str, dict[str, Any]] = {}
    day = F.to_date("event_time").alias("day")  # Spark's own event date (the session is UTC)
    opened = tables["account_opened"].orderBy("event_time", "event_id").select("*", day).collect()
    for r in opened:
        if r["account_id"] in apps:
            continue
        apps[r["account_id"]] = {
            "application_id": r["account_id"],
            "opened_on": r["day"],
            "credit_limit": r["credit_limit"],
            "income": r["income"],
            "age": r["age"],
            "sex": r["sex"],
            "education": r["education"],
            "marital_status": r["marital_status"],
            "attributes": dict(r["attributes"] or {}),
            "statements": [],
            "payments": [],
            "purchases": [],
        }
    lists: dict[str, list[Any]] = defaultdict(list)
    for r in tables["statement"].orderBy("statement_date", "event_time").collect():
        lists[("statements", r["account_id"])].append(  # type: ignore[index]
            {
                "statement_date": r["statement_date"],
                "balance": r["balance"],
                "minimum_due": r["minimum_due"],
                "repayment_status": r["repayment_status"],
                "credit_limit": r["credit_limit"],
            }
        )
    for r in tables["payment"].select("*", day).collect():
        lists[("payments", r["account_id"])].append(  # type: ignore[index]
            {"date": r["day"], "amount": r["amount"]}
        )
    for r in tables["purchase"].select("*", day).collect():
        lists[("purchases", r["account_id"])].append(  # type: ignore[index]
            {
                "date": r["day"],
                "amount": r["amount"],
                "merchant_category": r["merchant_category"],
            }
        )
    for (kind, account), items in lists.items():  # type: ignore[misc]
        if account in apps:
            apps[account][kind] = items
    return apps


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str | dt.date) or isinstance(b, str | dt.date):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def world(spark: SparkSession) -> dict[str, Any]:  # noqa: F811
    tables = _tables(spark)
    (obs,) = chain.observation_dates(tables)
    frame = chain.features_of(tables, [obs, MID_OBS])
    offline = {(r["account_id"], r["obs_date"]): r.asDict() for r in frame.collect()}
    return {"obs": obs, "offline": offline, "apps": raw_facts(tables), "schema": frame.schema}


def test_raw_facts_give_the_spark_feature_rows(world: dict[str, Any]) -> None:
    offline, apps = world["offline"], world["apps"]
    assert len(offline) > 150
    columns = [c for c in world["schema"].fieldNames() if c not in ("label", "source")]
    for obs_date in (world["obs"], MID_OBS):
        keys = sorted(k for k in offline if k[1] == obs_date)
        assert keys
        requests = [dict(apps[account], obs_date=obs_date) for account, _ in keys]
        rows = build_rows(requests)
        for (account, _), row in zip(keys, rows, strict=True):
            expected = offline[(account, obs_date)]
            for name in columns:
                if name == "account_id":
                    continue
                assert same(row.get(name), expected[name]), (account, obs_date, name)
    # the default observation date of the raw form is the pipeline's
    defaults = build_rows([apps[k[0]] for k in offline if k[1] == world["obs"]][:40])
    assert {r["obs_date"] for r in defaults} == {world["obs"]}


def test_raw_and_precomputed_forms_agree(world: dict[str, Any]) -> None:
    from benchmarks.fixtures import small_xgb_pipeline

    offline, apps, obs = world["offline"], world["apps"], world["obs"]
    table = pd.DataFrame([offline[k] for k in sorted(offline) if k[1] == obs])
    # the labels of the mid-month date (the current date's window has no outcome yet)
    mid = pd.DataFrame([offline[k] for k in sorted(offline) if k[1] == MID_OBS])
    train = mid[mid["label"].notna()]
    assert train["label"].nunique() == 2
    pipeline = small_xgb_pipeline(MODEL_FEATURES, n_estimators=30)
    pipeline.fit(train[MODEL_FEATURES], train["label"].astype(int))
    kinds = {f.name: f.dataType.simpleString() for f in world["schema"].fields}
    signature = [
        {"name": n, "type": {"int": "long", "string": "string"}.get(kinds[n], "double")}
        for n in MODEL_FEATURES
    ]
    loaded = prepare(
        Champion("raw-test", "1", None, pipeline, {"threshold": "0.2"}, None, signature)
    )
    assert loaded.scorer is not None
    app = create_app(Settings(), ttl=3600)
    app.state.holder.current = loaded  # the champion in hand: no registry needed here

    accounts = sorted(table["account_id"])
    offline_rows = [offline[(a, obs)] for a in accounts]
    reference = loaded.scorer.score(offline_rows, accounts)  # as GET /accounts/{id}/score does
    raw_apps = []
    for account in accounts:
        facts = {k: v for k, v in apps[account].items() if k not in PROTECTED}
        raw_apps.append(_jsonable(facts))
    complete = [
        i for i, row in enumerate(offline_rows) if all(row[n] is not None for n in MODEL_FEATURES)
    ]
    assert len(complete) > 50
    precomputed = [
        {"application_id": accounts[i], **{n: offline_rows[i][n] for n in MODEL_FEATURES}}
        for i in complete
    ]

    async def call() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            raw = await client.post("/score", json={"raw_applications": raw_apps})
            pre = await client.post("/score", json={"applications": precomputed})
            return raw, pre

    import asyncio

    raw_resp, pre_resp = asyncio.run(call())
    assert raw_resp.status_code == 200, raw_resp.text[:2000]
    assert pre_resp.status_code == 200, pre_resp.text[:2000]
    raw_results = raw_resp.json()["results"]
    pre_results = {r["application_id"]: r for r in pre_resp.json()["results"]}
    assert [r["application_id"] for r in raw_results] == accounts
    pds = []
    for got, want in zip(raw_results, reference, strict=True):
        assert got["obs_date"] == obs.isoformat()
        for other in filter(None, (want, pre_results.get(got["application_id"]))):
            assert math.isclose(got["pd"], other["pd"], rel_tol=1e-9, abs_tol=1e-12)
            assert (got["score"], got["risk_tier"], got["decision"]) == (
                other["score"],
                other["risk_tier"],
                other["decision"],
            )
            assert [r["feature"] for r in got["reasons"]] == [
                r["feature"] for r in other["reasons"]
            ]
            for a, b in zip(got["reasons"], other["reasons"], strict=True):
                assert math.isclose(
                    a["contribution"], b["contribution"], rel_tol=1e-9, abs_tol=1e-12
                )
        pds.append(got["pd"])
    assert np.std(pds) > 0  # the model discriminates: the comparison is not between constants


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
