"""The batch job against the real moto S3, Glue and MLflow servers."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.fixtures import CATEGORICAL, NUMERIC, features_frame
from riskstream import names
from riskstream.clients import make_client
from riskstream.storage import Storage, read_parquet, split_s3
from serving.batch import ScoringJobError, run_batch
from serving.sql import run_sql
from serving.storage import (
    read_scores,
    replaced_runs,
    s3_filesystem,
    score_partitions,
    write_scores,
)
from tests.serving.conftest import OBS_DATE, ServingWorld

pytestmark = pytest.mark.integration

SCORE_DATE = dt.date(2026, 2, 1)


def test_batch_scores_latest_partition_and_registers_it(world: ServingWorld) -> None:
    settings = world.settings
    report = run_batch(settings, SCORE_DATE)
    assert report["rows"] == 300
    assert report["obs_date"] == OBS_DATE.isoformat()
    assert report["model_version"] == world.version
    table = read_scores(settings, SCORE_DATE).to_pandas()
    assert len(table) == 300
    expected_cols = {
        "account_id", "obs_date", "pd", "score", "risk_tier", "decision",
        "reason_1", "reason_2", "reason_3", "model_name", "model_version", "label", "exposure",
    }  # fmt: skip
    assert expected_cols <= set(table.columns)
    assert table["pd"].between(0, 1).all()
    assert table["score"].between(300, 850).all()
    assert set(table["risk_tier"]) <= {"Prime", "Near-prime", "Subprime", "High risk"}
    assert set(table["decision"]) <= {"approve", "decline"}
    # decision at the champion's threshold tag (0.3)
    assert ((table["pd"] >= 0.3) == (table["decision"] == "decline")).all()
    # same probabilities as the pipeline itself on the same records
    frame = features_frame(300, OBS_DATE, seed=2)
    direct = world.pipeline.predict_proba(frame[world.pipeline.feature_names_in_])[:, 1]
    merged = frame[["account_id"]].assign(direct=direct).merge(table, on="account_id")
    np.testing.assert_allclose(merged["pd"], merged["direct"], rtol=1e-6)
    assert merged["exposure"].equals(frame["credit_limit"].astype(float))

    glue = make_client(settings, "glue")
    own = names.scores_table(settings.portfolio)
    tbl = glue.get_table(DatabaseName=settings.glue_database, Name=own)["Table"]
    assert [k["Name"] for k in tbl["PartitionKeys"]] == ["score_date"]
    parts = glue.get_partitions(DatabaseName=settings.glue_database, TableName=own)
    assert [SCORE_DATE.isoformat()] in [p["Values"] for p in parts["Partitions"]]

    s3 = make_client(settings, "s3")
    bucket, key = split_s3(names.monitoring_location(settings, SCORE_DATE))
    psi = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert psi["model_version"] == world.version
    assert psi["score"]["on"] == "pd"
    assert 0 <= psi["score"]["psi"] < 0.25  # same population as training
    # every input has a baseline, so every one has its PSI (the drift view shows them)
    assert sorted(psi["features"]) == sorted(NUMERIC + CATEGORICAL)
    assert psi["features"]["education"]["categories"][-1] == "(other)"


def test_rerun_replaces_the_partition(world: ServingWorld) -> None:
    settings = world.settings
    day = dt.date(2026, 2, 2)
    run_batch(settings, day)
    run_batch(settings, day)
    s3 = make_client(settings, "s3")
    bucket, prefix = split_s3(names.scores_location(settings, day) + "/")
    keys = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert len(keys) == 1
    assert read_scores(settings, day).num_rows == 300
    assert day in score_partitions(settings)
    # the run the rerun replaced is kept, and SQL reads it beside the current one
    (stamp,) = replaced_runs(settings, day)
    kept = run_sql(
        settings,
        f"SELECT count(*) AS n, any_value(replaced_at) AS run FROM scores_replaced "
        f"WHERE score_date = DATE '{day.isoformat()}'",
    )
    assert kept.to_dict("records") == [{"n": 300, "run": stamp}]


def test_only_the_newest_replaced_runs_are_kept(world: ServingWorld) -> None:
    settings = world.settings
    day = dt.date(2026, 2, 3)
    start = dt.datetime(2026, 2, 3, 6, tzinfo=dt.UTC)
    for i in range(names.REPLACED_RUNS_KEPT + 3):
        table = pa.table({"account_id": ["a"], "run": [i]})
        write_scores(settings, table, day, now=start + dt.timedelta(minutes=i))
    runs = replaced_runs(settings, day)
    # every write but the first replaced one; the oldest replaced ones went
    expected = [start + dt.timedelta(minutes=i) for i in range(3, names.REPLACED_RUNS_KEPT + 3)]
    assert runs == [names.replaced_at_stamp(t) for t in expected]
    oldest = read_parquet(
        Storage(make_client(settings, "s3")),
        s3_filesystem(settings),
        names.replaced_scores_location(settings, day, runs[0]),
    )
    assert oldest.column("run").to_pylist() == [2]  # the run a write at minute 3 replaced
    assert read_scores(settings, day).column("run").to_pylist() == [names.REPLACED_RUNS_KEPT + 2]


def test_no_partition_before_the_date_is_a_clear_error(world: ServingWorld) -> None:
    with pytest.raises(ScoringJobError, match="score_date=2020-01-01"):
        run_batch(world.settings, "2020-01-01")
