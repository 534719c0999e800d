"""Compaction merges a partition's files into one: same rows, same checksum, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl import layout, transforms
from etl.compact import compact_curated, compact_table
from riskstream.storage import Storage
from tests.etl.helpers import purchase


def _checksum(frame: DataFrame) -> tuple[int, int]:
    """(rows, an order-independent checksum over every column of every row)."""
    row_hash = F.xxhash64(*[F.col(c) for c in sorted(frame.columns)])
    got = frame.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("h"))
    row = got.first()
    assert row is not None
    return int(row["n"]), int(row["h"] or 0)


@pytest.mark.integration
def test_compaction_keeps_rows_and_checksums_and_is_idempotent(
    spark: SparkSession, tmp_path: Path
) -> None:
    storage = Storage()
    table = str(tmp_path / "curated" / "purchase")
    schema = transforms.curated_schema("purchase")
    events = [purchase(n, f"A{n % 5}", f"2005-0{7 + n % 3}-1{n % 9}", float(n)) for n in range(60)]
    frame = spark.createDataFrame(
        [
            (
                e["event_id"],
                e["account_id"],
                e["event_time"],
                e["source"],
                e["payload"]["amount"],
                e["payload"]["merchant_category"],
            )
            for e in events
        ],
        "event_id string, account_id string, event_time string, source string, amount double, "
        "merchant_category string",
    ).withColumn("event_time", F.to_timestamp("event_time"))
    frame = transforms.with_event_month(frame.select(*[f.name for f in schema.fields]))
    # Several small files per month, as many small appends would leave them.
    staging = tmp_path / "staging"
    frame.repartition(4).write.partitionBy(layout.MONTH_KEY).parquet(str(staging))
    entries = layout.upload_staged(storage, staging, table, layout.MONTH_KEY, "r1")
    layout.commit(storage, table, {"key": layout.MONTH_KEY, "partitions": {}}, entries, "r1")
    manifest = layout.load_manifest(storage, table, layout.MONTH_KEY)
    assert sorted(manifest["partitions"]) == ["2005-07", "2005-08", "2005-09"]
    assert all(len(e["files"]) > 1 for e in manifest["partitions"].values())
    before = {
        m: _checksum(layout.read_table(spark, storage, table, schema, values=[m]))
        for m in manifest["partitions"]
    }

    report = compact_table(spark, storage, table, schema)
    assert report["partitions_compacted"] == ["2005-07", "2005-08", "2005-09"]
    assert report["files_after"] == 3
    manifest = layout.load_manifest(storage, table, layout.MONTH_KEY)
    assert all(len(e["files"]) == 1 for e in manifest["partitions"].values())
    after = {
        m: _checksum(layout.read_table(spark, storage, table, schema, values=[m]))
        for m in manifest["partitions"]
    }
    assert after == before
    assert sum(n for n, _ in after.values()) == 60

    again = compact_curated(spark, storage, str(tmp_path / "curated"), ["purchase"])
    assert again["partitions_compacted"] == 0  # idempotent: nothing left to merge
    assert layout.load_manifest(storage, table, layout.MONTH_KEY) == manifest
    with pytest.raises(ValueError, match="'nope' is not a curated table"):
        compact_curated(spark, storage, str(tmp_path / "curated"), ["nope"])
