"""Compaction: merge the files of a table's partitions into one file each, idempotently.

The ETL already writes one file per partition per run; partitions gather several files when a
version is written by other means (a bigger Spark job, a backfill, ``maxRecordsPerFile``).
Compaction writes the merged rows as a new version of the partition and commits it like any run
(:mod:`etl.layout`): readers see the old files until the manifest switch, then the one new file.
Partitions already in one file are left alone, so running it again does nothing.

Entry/IO module.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import layout
from riskstream.storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

logger = logging.getLogger(__name__)


def compact_table(
    spark: SparkSession,
    storage: Storage,
    table: str,
    schema: StructType,
    key: str = layout.MONTH_KEY,
    values: Iterable[str] | None = None,
    min_files: int = 2,
) -> dict[str, Any]:
    """Merge every partition (of ``values``, or all) holding ``min_files`` files or more."""
    manifest = layout.load_manifest(storage, table, key)
    parts = manifest["partitions"]
    chosen = sorted(parts) if values is None else sorted(set(values) & set(parts))
    todo = [v for v in chosen if len(parts[v]["files"]) >= min_files]
    run_id = "compact-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "table": table,
        "partitions_seen": len(chosen),
        "partitions_compacted": todo,
        "files_before": sum(len(parts[v]["files"]) for v in todo),
        "run_id": run_id,
    }
    if not todo:
        logger.info("%s: every partition is already one file; nothing to compact", table)
        report["files_after"] = report["files_before"]
        return report
    from pyspark.sql import functions as F

    entries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="riskstream-compact-") as staging:
        for value in todo:
            frame = layout.read_table(spark, storage, table, schema, key, [value], manifest)
            out = Path(staging) / value
            frame.withColumn(key, F.lit(value)).coalesce(1).write.mode("overwrite").partitionBy(
                key
            ).parquet(str(out))
            entries.update(layout.upload_staged(storage, out, table, key, run_id))
    layout.commit(storage, table, manifest, entries, run_id)
    report["files_after"] = sum(len(e["files"]) for e in entries.values())
    logger.info(
        "%s: compacted %d partition(s), %d files -> %d",
        table,
        len(todo),
        report["files_before"],
        report["files_after"],
    )
    return report


def compact_curated(
    spark: SparkSession, storage: Storage, curated: str, tables: Iterable[str] | None = None
) -> dict[str, Any]:
    """Compact every curated table under ``curated`` (or the ones named)."""
    from etl import transforms
    from riskstream.storage import join

    names = list(tables) if tables else list(transforms.EVENT_TYPES)
    for name in names:
        if name not in transforms.EVENT_TYPES:
            raise ValueError(
                f"table {name!r} is not a curated table; use one of {transforms.EVENT_TYPES}"
            )
    reports = {
        name: compact_table(
            spark,
            storage,
            join(curated, name),
            transforms.curated_schema(name),
            layout.table_key(name),
        )
        for name in names
    }
    return {
        "tables": reports,
        "partitions_compacted": sum(len(r["partitions_compacted"]) for r in reports.values()),
    }
