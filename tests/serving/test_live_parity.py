"""Batch and live agree: a synthetic portfolio with duplicated and late events goes through the
ETL transforms, the Spark features job and the batch scoring path, and, in stream order, through
the live scorer's per-account state (serving.livestate) and its compiled scorer. Every account's
features and PD must be equal (1e-9) at the same cut-off."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from etl import chain
from ingestion.synthetic import SyntheticConfig, simulate
from riskstream.events import serialize
from serving.compiled import compile_pipeline
from serving.livestate import AccountState, feature_rows
from serving.scoring import ScoringConfig, explain
from tests.etl.conftest import spark  # noqa: F401  (the session's Spark fixture)

pytestmark = pytest.mark.integration  # Spark: a JVM

CONFIG = SyntheticConfig(accounts=120, months=8, seed=11, start=dt.date(2024, 1, 1))
FEATURES = [
    "credit_limit",
    "months_on_book",
    *[f"bill_amt_m{k}" for k in range(1, 7)],
    *[f"pay_amt_m{k}" for k in range(1, 7)],
    *[f"repayment_status_m{k}" for k in range(1, 7)],
    "utilisation_avg_3m",
    "pay_to_bill_avg",
    "missed_minimum_count",
    "unpaid_to_limit_avg",
    "bill_volatility",
    "spend_3m",
    "spend_6m",
    "purchase_count_6m",
    "avg_ticket_6m",
    "education",
]


def stream(seed: int = 0) -> list[tuple[dict[str, Any], str]]:
    """(event, arrival day) in stream order: the portfolio, 5% of it sent twice (the copy
    arrives later), and 3% held back and sent at the end (late, out of order)."""
    events = list(simulate(CONFIG).events())
    rng = np.random.default_rng(seed)
    late = set(rng.choice(len(events), size=len(events) * 3 // 100, replace=False).tolist())
    out = [(e, str(e["event_time"])[:10]) for i, e in enumerate(events) if i not in late]
    out += [(events[i], "2030-01-01") for i in sorted(late)]
    for i in rng.choice(len(events), size=len(events) // 20, replace=False).tolist():
        out.append((events[i], "2030-01-02"))
    return out


def same(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, str | dt.date) or isinstance(b, str | dt.date):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def batch_and_live(spark: SparkSession) -> dict[str, Any]:  # noqa: F811
    sent = stream()
    rows = [(serialize(e).decode(), day, f"f{i // 500}") for i, (e, day) in enumerate(sent)]
    lines = spark.createDataFrame(rows, "value string, dt string, source_file string")
    tables = chain.curate(lines, dt.datetime(2030, 1, 3, tzinfo=dt.UTC))
    (obs,) = chain.observation_dates(tables)
    frame = chain.features_of(tables, [obs], labels_known_on=dt.date(2030, 1, 1))
    batch = {r["account_id"]: r.asDict() for r in frame.collect()}
    states: dict[str, AccountState] = {}
    for i, (event, _) in enumerate(sent):
        state = states.setdefault(event["account_id"], AccountState(event["account_id"]))
        if not state.seen("shardId-0", str(i)):
            state.apply(event)
            state.mark("shardId-0", str(i))
    return {"obs": obs, "batch": batch, "states": states, "schema": frame.schema, "sent": sent}


def test_every_account_has_the_same_features_live_and_batch(batch_and_live: dict[str, Any]) -> None:
    batch, states, obs = batch_and_live["batch"], batch_and_live["states"], batch_and_live["obs"]
    assert len(batch) > 100
    ordered = sorted(states)
    live = dict(zip(ordered, feature_rows([states[a] for a in ordered], 6, obs), strict=True))
    scored = {a for a, row in live.items() if not isinstance(row, str)}
    assert scored == set(batch)  # the same population: opened before, not defaulted before
    columns = [c for c in batch_and_live["schema"].fieldNames() if c not in ("label", "source")]
    for account in sorted(batch):
        row = live[account]
        assert not isinstance(row, str)
        for name in columns:
            if name != "account_id":
                assert same(row.get(name), batch[account][name]), (account, name)
    # the live state's own cut-off is the pipeline's default for accounts billed to the end
    assert sum(states[a].obs_date() == obs for a in batch) > len(batch) // 2


def test_every_account_has_the_same_pd_live_and_batch(batch_and_live: dict[str, Any]) -> None:
    from xgboost import XGBClassifier

    from benchmarks.fixtures import make_pipeline

    batch, states, obs = batch_and_live["batch"], batch_and_live["states"], batch_and_live["obs"]
    accounts = sorted(batch)
    table = pd.DataFrame([batch[a] for a in accounts])
    numeric = [c for c in FEATURES if c != "education"]
    pipeline = make_pipeline("xgb")
    pipeline.steps[0] = (
        "preprocess",
        pipeline.steps[0][1].set_params(
            transformers=[
                ("num", "passthrough", numeric),
                ("cat", pipeline.steps[0][1].transformers[1][1], ["education"]),
            ]
        ),
    )
    pipeline.steps[1] = ("model", XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1))
    rng = np.random.default_rng(0)  # the labels only need both classes: parity is the point
    pipeline.fit(table[FEATURES], rng.integers(0, 2, size=len(table)))
    batch_pd = explain(pipeline, table[FEATURES], ScoringConfig()).pd
    rows = feature_rows([states[a] for a in accounts], 6, obs)
    scorer = compile_pipeline(pipeline)
    live_pd = scorer.pd(scorer.transform([{n: r.get(n) for n in FEATURES} for r in rows]))
    agree = [abs(float(b) - float(v)) <= 1e-9 for b, v in zip(batch_pd, live_pd, strict=True)]
    assert sum(agree) / len(agree) == 1.0, [
        a for a, ok in zip(accounts, agree, strict=True) if not ok
    ]
