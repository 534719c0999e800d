"""``benchmarks.fixtures.taiwan_features`` (the benchmarks' and tests' Taiwan table, built without
Spark) gives the same columns and values as the ETL: real Taiwan rows through the replay's events
(``ingestion.taiwan``), the ETL's validation and curated tables, and ``etl.features``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import TAIWAN_OBS_DATE, taiwan_features
from riskstream.datasets import TAIWAN_CSV
from tests.etl.conftest import spark  # noqa: F401  (the session's Spark fixture)

pytestmark = pytest.mark.integration  # Spark: a JVM


def _etl_features(spark: object, raw: pd.DataFrame, tmp: Path) -> pd.DataFrame:  # noqa: F811
    from pyspark.sql import functions as F

    from etl import chain
    from ingestion.taiwan import frame_events
    from riskstream.events import serialize

    path = tmp / "events.jsonl"
    path.write_bytes(b"".join(serialize(e) + b"\n" for e in frame_events(raw)))
    lines = spark.read.text(str(path)).select(  # type: ignore[attr-defined]
        "value",
        F.substring(F.get_json_object("value", "$.event_time"), 1, 10).alias("dt"),
        F.lit("events.jsonl").alias("source_file"),
    )
    built, obs = chain.events_to_features(lines, datetime.now(UTC))
    assert obs == [TAIWAN_OBS_DATE]
    return built.toPandas()


def test_dev_table_matches_the_etl(spark: object, tmp_path: Path) -> None:  # noqa: F811
    raw = pd.read_csv(TAIWAN_CSV, nrows=400)
    etl = _etl_features(spark, raw, tmp_path).sort_values("account_id").reset_index(drop=True)
    dev = taiwan_features(raw).sort_values("account_id").reset_index(drop=True)
    assert dev["account_id"].tolist() == etl["account_id"].tolist()
    attrs = {c for c in etl.columns if c.startswith("attr_")}  # the replay's raw codes and id
    assert set(dev.columns) == set(etl.columns) - attrs
    assert (dev["label"].to_numpy() == etl["label"].to_numpy()).all()
    for column in dev.columns:
        if column in ("account_id", "obs_date", "label"):
            continue
        a, b = dev[column], etl[column]
        if pd.api.types.is_numeric_dtype(b.dtype):
            np.testing.assert_allclose(
                a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9, err_msg=column
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column
