"""Glue-style job: raw event lines -> typed, de-duplicated curated tables + quarantine.

Runs unchanged from ``riskstream etl raw-to-curated`` and from spark-submit::

    JARS=.jars/hadoop-aws-3.3.1.jar:.jars/aws-java-sdk-bundle-1.11.901.jar
    .venv/bin/spark-submit --driver-class-path "$JARS" \\
        etl/jobs/raw_to_curated.py --JOB_NAME raw_to_curated --run_date 2026-11-21 \\
        --job-bookmark-option job-bookmark-enable

Arguments (all but JOB_NAME default from settings): ``--source`` raw base (``.../events/``),
``--target`` curated base, ``--quarantine`` quarantine base, ``--run_date``,
``--job-bookmark-option`` (enable | disable | pause), ``--reset`` (forget the bookmark and
rebuild every table from the whole raw history).

Layout (docs/CONTRACTS.md): raw by arrival hour (``dt=/hr=``), bookmarked per arrival partition;
curated tables by event month (``event_month=YYYY-MM``), one file per partition per run, each run
writing new partition versions and committing them by manifest and catalog (:mod:`etl.layout`).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import layout, transforms
from etl.glue import Job
from etl.jobs.common import (
    bookmark_store,
    default_locations,
    elapsed,
    job_options,
    parse_date,
    parse_flag,
    save_report,
    storage_for,
    submit,
)
from etl.spark import to_spark_uri
from riskstream import names
from riskstream.clients import make_client
from riskstream.events import EVENT_TYPES
from riskstream.settings import Settings
from riskstream.storage import (
    Storage,
    fingerprint,
    is_s3,
    join,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

JOB_NAME = "raw_to_curated"
CONTEXT = "raw_events"  # the bookmark's transformation context
QUARANTINE_TABLE = "etl_quarantine"
QUARANTINE_KEY = "dt"  # the UTC date the quarantined lines arrived
PARTITION = "partition_value"  # the staged union's partition column (each table's own key)


class UnbalancedRunError(RuntimeError):
    """Rows in != out + quarantined + duplicates: a bug; the bookmark is not committed."""


def options(settings: Settings, **overrides: str) -> dict[str, str]:
    """The job's optional arguments with their defaults from ``settings``."""
    where = default_locations(settings)
    return job_options(
        JOB_NAME,
        overrides,
        source=where["raw"],
        target=where["curated"],
        quarantine=where["quarantine"],
        reset="false",
    )


def run(spark: SparkSession, settings: Settings, args: Mapping[str, str]) -> dict[str, Any]:
    """The body of the Glue script: init, read pending arrival partitions, transform, write
    new partition versions, commit them (manifests, then the catalog), commit the bookmark."""
    started = time.perf_counter()
    source, target, quarantine = args["source"], args["target"], args["quarantine"]
    run_date = parse_date("run_date", args.get("run_date", ""))
    storage = storage_for(settings, source, target, quarantine)
    store = bookmark_store(settings, storage, target)
    rebuild = parse_flag("reset", args.get("reset", "false"))
    tables = _tables(target, quarantine)
    stored = {t: layout.stored_manifest(storage, uri) for t, (uri, _) in tables.items()}
    relaid = {
        t: m.get("key") for t, m in stored.items() if m is not None and m.get("key") != tables[t][1]
    }
    if relaid and not rebuild:
        logger.warning(
            "%s: the lake was written with another layout (%s); rebuilding every table from the "
            "whole raw history, as --reset does",
            args["JOB_NAME"],
            ", ".join(f"{t} by {k}, now by {tables[t][1]}" for t, k in sorted(relaid.items())),
        )
        rebuild = True
    if rebuild:
        store.reset(args["JOB_NAME"])
    job = Job(store).init(args["JOB_NAME"], args)

    listed = layout.list_arrival_partitions(storage, source)
    prints = {p: fingerprint(files) for p, files in listed.items()}
    pending = job.pending(CONTEXT, prints)
    report: dict[str, Any] = {
        "job": job.name,
        "run_id": job.run_id,
        "run_date": run_date.isoformat(),
        "spark_master": spark.sparkContext.master,  # where it ran: local[N] or a cluster's URL
        "source": source,
        "target": target,
        "quarantine": quarantine,
        "bookmark_option": job.option,
        "rebuild": rebuild,
        "partitions_seen": len(listed),
        "partitions_processed": pending,
        "files_read": sum(len(listed[p]) for p in pending),
    }
    manifests = {
        t: (stored[t] if stored[t] is not None and not rebuild else {"key": key, "partitions": {}})
        for t, (_, key) in tables.items()
    }
    if not pending:
        logger.info(
            "%s: no new or changed raw partitions under %s; nothing to do", job.name, source
        )
        report.update(_empty_counts())
        report["partitions_written"] = {t: [] for t in tables}
        if is_s3(target):
            _catalog(settings, tables, manifests)
        report["seconds"] = elapsed(started)
        save_report(storage, target, report)
        job.commit()
        return report

    # Materialised once: the counts and the writes below read it instead of re-parsing the
    # JSON, and their plans start from the checkpoint instead of the long validation plan.
    lake = _Lake(spark, storage, tables, manifests)
    validated, classified = _read_and_classify(lake, source, pending)
    classified = classified.localCheckpoint(eager=True)
    validated.unpersist()  # persisted only to build the checkpoint
    try:
        if not rebuild:
            classified = _mark_already_curated(lake, classified)
        counts = [r.asDict() for r in _counts(classified).collect()]
        report.update(_summarise(counts))
        _check(report)
        with tempfile.TemporaryDirectory(prefix="riskstream-stage-") as staging:
            entries = _write(
                spark,
                storage,
                classified,
                counts,
                tables,
                manifests,
                pending,
                Path(staging),
                job.run_id,
                rebuild,
            )
    finally:
        classified.unpersist()
    before_commit(report)
    for table, (uri, _) in tables.items():
        if entries[table] or rebuild:
            manifests[table] = layout.commit(
                storage, uri, manifests[table], entries[table], job.run_id, replace_all=rebuild
            )
    if is_s3(target):
        _catalog(settings, tables, manifests)
    report["partitions_written"] = {t: sorted(e) for t, e in entries.items()}
    report["seconds"] = elapsed(started)
    save_report(storage, target, report)
    job.mark(CONTEXT, {p: prints[p] for p in pending})
    job.commit()
    return report


def before_commit(report: Mapping[str, Any]) -> None:
    """Called between writing a run's files and committing them (tests inject a crash here)."""


def _tables(target: str, quarantine: str) -> dict[str, tuple[str, str]]:
    """Every table the job writes: name -> (base URI, partition key)."""
    out = {t: (join(target, t), layout.table_key(t)) for t in EVENT_TYPES}
    out[QUARANTINE_TABLE] = (quarantine, QUARANTINE_KEY)
    return out


def _schema(table: str) -> Any:
    if table == QUARANTINE_TABLE:
        return transforms.quarantine_schema()
    return transforms.curated_schema(table)


@dataclass(frozen=True)
class _Lake:
    """The curated tables as this run found them: the session and storage to read them with,
    where each lives (base URI, partition key) and its committed manifest."""

    spark: SparkSession
    storage: Storage
    tables: Mapping[str, tuple[str, str]]
    manifests: Mapping[str, Any]

    def read(self, table: str, values: Iterable[str] | None = None) -> DataFrame:
        """A curated table's committed rows (only the partitions in ``values`` when given)."""
        uri, key = self.tables[table]
        return layout.read_table(
            self.spark, self.storage, uri, _schema(table), key, values, self.manifests[table]
        )


def _read_and_classify(
    lake: _Lake, source: str, pending: Sequence[str]
) -> tuple[DataFrame, DataFrame]:
    """(validated lines, persisted; classified lines) for the pending arrival partitions."""
    from pyspark.sql import functions as F

    paths = [to_spark_uri(join(source, p)) for p in pending]
    lines = (
        lake.spark.read.option("basePath", to_spark_uri(source))
        .text(paths)
        .select(
            "value",
            F.col("dt").cast("string").alias("dt"),  # the arrival date
            F.input_file_name().alias("source_file"),
        )
    )
    # Accounts opened in earlier runs (the account_opened table is one row per account).
    opened = lake.read("account_opened")
    validated = transforms.validate_events(transforms.parse_lines(lines), datetime.now(UTC))
    validated = validated.persist()
    classified = transforms.classify_events(validated, opened.select("account_id"))
    return validated, transforms.with_event_month(classified)


def _mark_already_curated(lake: _Lake, classified: DataFrame) -> DataFrame:
    """Anti-join the run's valid rows against the ids already curated in the months it touches."""
    from functools import reduce

    if not any(lake.manifests[t]["partitions"] for t in EVENT_TYPES):
        return classified  # nothing curated yet: nothing to anti-join against
    touched = {
        t: sorted({layout.key_value(lake.tables[t][1], m) for m in months})
        for t, months in _months(classified).items()
    }
    ids = [
        lake.read(t, values).select("event_id")
        for t, values in touched.items()
        if set(values) & set(lake.manifests[t]["partitions"])
    ]
    if not ids:
        return classified
    logger.info("de-duplicating against the curated months this run touches: %s", touched)
    marked = transforms.mark_already_curated(classified, reduce(lambda a, b: a.union(b), ids))
    out = marked.localCheckpoint(eager=True)
    classified.unpersist()
    return out


def _months(classified: DataFrame) -> dict[str, list[str]]:
    """event_type -> the event months of its valid rows in this run."""
    from pyspark.sql import functions as F

    rows = (
        classified.where(F.col("status") == transforms.STATUS_OK)
        .select("event_type", "event_month")
        .distinct()
        .collect()
    )
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["event_type"], []).append(row["event_month"])
    return {t: sorted(m) for t, m in out.items()}


def _counts(classified: DataFrame) -> DataFrame:
    return classified.groupBy("dt", "event_month", "status", "event_type", "reason").count()


def _empty_counts() -> dict[str, Any]:
    return {
        "rows_in": 0,
        "rows_out": {t: 0 for t in EVENT_TYPES},
        "rows_out_total": 0,
        "quarantined": {},
        "quarantined_total": 0,
        "duplicates_removed": 0,
        "balanced": True,
    }


def _summarise(counts: list[dict[str, Any]]) -> dict[str, Any]:
    out = _empty_counts()
    for row in counts:
        n = int(row["count"])
        out["rows_in"] += n
        if row["status"] == transforms.STATUS_OK:
            out["rows_out"][row["event_type"]] += n
        elif row["status"] == transforms.STATUS_DUPLICATE:
            out["duplicates_removed"] += n
        else:
            reason = row["reason"]
            out["quarantined"][reason] = out["quarantined"].get(reason, 0) + n
    out["rows_out_total"] = sum(out["rows_out"].values())
    out["quarantined_total"] = sum(out["quarantined"].values())
    out["balanced"] = out["rows_in"] == (
        out["rows_out_total"] + out["quarantined_total"] + out["duplicates_removed"]
    )
    return out


def _check(report: dict[str, Any]) -> None:
    line = (
        f"rows in {report['rows_in']} = out {report['rows_out_total']} + quarantined "
        f"{report['quarantined_total']} + duplicates {report['duplicates_removed']}"
    )
    if not report["balanced"]:
        raise UnbalancedRunError(f"{report['job']}: the run does not balance: {line}")
    logger.info(
        "%s: %s; out by table %s; quarantined by reason %s",
        report["job"],
        line,
        report["rows_out"],
        report["quarantined"] or "{}",
    )


def _write(
    spark: SparkSession,
    storage: Storage,
    classified: DataFrame,
    counts: list[dict[str, Any]],
    tables: Mapping[str, tuple[str, str]],
    manifests: Mapping[str, Any],
    pending: Sequence[str],
    staging: Path,
    run_id: str,
    rebuild: bool,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Write a new version of every partition this run adds rows to: its current rows plus the
    new ones, one file per partition, staged locally and uploaded. Nothing is committed here.

    The five curated tables are written by one Spark job (their columns widened to all payload
    fields, partitioned by event type and month), then each file is cut down to its table's
    columns: one job instead of five saves a dozen small stages per run.
    """
    from pyspark.sql import functions as F

    entries: dict[str, dict[str, dict[str, Any]]] = {}
    wide = ["event_id", "account_id", "event_time", "source", *transforms.PAYLOAD_FIELDS]
    frames: list[DataFrame] = []
    for table, (uri, key) in tables.items():
        if table == QUARANTINE_TABLE:
            new = transforms.quarantine_table(classified)
            values = {r["dt"] for r in counts if r["status"] == transforms.STATUS_QUARANTINED}
        else:
            new = transforms.with_partition_key(
                transforms.curated_table(classified, table), key
            ).drop("dt")
            values = {
                layout.key_value(key, r["event_month"])
                for r in counts
                if r["status"] == transforms.STATUS_OK and r["event_type"] == table
            }
        entries[table] = {}
        if not values:
            continue
        chosen = sorted(values)
        if not rebuild and set(chosen) & set(manifests[table]["partitions"]):
            old = layout.read_table(
                spark, storage, uri, _schema(table), key, chosen, manifests[table]
            )
            if table == QUARANTINE_TABLE:
                # Rows from the raw partitions reprocessed now are replaced, the others kept.
                origin = F.regexp_extract("source_file", r"(dt=[^/]+/hr=[^/]+)/[^/]*$", 1)
                old = old.where(~origin.isin(*pending)).withColumn(
                    "dt", F.regexp_extract("source_file", r"dt=([^/]+)/hr=", 1)
                )
            else:
                old = transforms.with_partition_key(old, key)
            new = new.unionByName(old.where(F.col(key).isin(*chosen)))
        if table == QUARANTINE_TABLE:
            out = staging / table
            new.repartition(key).write.mode("overwrite").partitionBy(key).parquet(str(out))
            entries[table] = layout.upload_staged(storage, out, uri, key, run_id)
            continue
        types = {f.name: f.dataType for f in transforms.curated_schema(table).fields}
        frames.append(
            new.select(
                *[
                    F.col(c) if c in types else F.lit(None).cast(_wide_type(c)).alias(c)
                    for c in wide
                ],
                F.lit(table).alias("event_type"),
                F.col(key).alias(PARTITION),
            )
        )
    if frames:
        from functools import reduce

        out = staging / "curated"
        union = reduce(lambda a, b: a.unionByName(b), frames)
        # One file per partition: without the shuffle every task writes a file into every
        # partition it touches, and on S3 each file costs several requests.
        union.repartition("event_type", PARTITION).write.mode("overwrite").partitionBy(
            "event_type", PARTITION
        ).parquet(str(out))
        for table in EVENT_TYPES:
            folder = out / f"event_type={table}"
            if folder.is_dir():
                uri, key = tables[table]
                narrow = staging / "narrow" / table
                layout.narrow_staged(folder, narrow, [f.name for f in _schema(table).fields], key)
                entries[table] = layout.upload_staged(storage, narrow, uri, key, run_id)
    return entries


def _wide_type(column: str) -> Any:
    from pyspark.sql import types as T

    if column == "event_time":
        return T.TimestampType()
    if column in transforms.PAYLOAD_FIELDS:
        return transforms._spark_type(transforms.PAYLOAD_FIELDS[column])
    return T.StringType()


def _catalog(
    settings: Settings,
    tables: Mapping[str, tuple[str, str]],
    manifests: Mapping[str, Any],
) -> None:
    """Reconcile the Glue catalog with the committed manifests (also repairs a run that died
    between its manifest and its catalog update)."""
    glue = make_client(settings, "glue")
    database = settings.glue_database
    for table, (uri, _) in tables.items():
        manifest = manifests[table]
        if table == QUARANTINE_TABLE:
            name = table
            description = "raw events the ETL rejected, with a reason (riskstream)"
        else:
            name = names.curated_table(table)
            description = f"curated {table} events, typed and de-duplicated (riskstream)"
        if not manifest["partitions"] and not _table_exists(glue, database, name):
            continue
        layout.sync_catalog(glue, database, name, uri, _schema(table), manifest, description)


def _table_exists(glue: Any, database: str, name: str) -> bool:
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry: settings from the environment, arguments from argv."""
    report = submit(argv, options, run)
    return 0 if report["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
