"""Glue-style job: raw event lines -> typed, de-duplicated curated tables + quarantine.

Runs unchanged from ``riskstream etl raw-to-curated`` and from spark-submit::

    JARS=.jars/hadoop-aws-3.3.1.jar:.jars/aws-java-sdk-bundle-1.11.901.jar
    .venv/bin/spark-submit --driver-class-path "$JARS" \\
        etl/jobs/raw_to_curated.py --JOB_NAME raw_to_curated --run_date 2026-11-21 \\
        --job-bookmark-option job-bookmark-enable

Arguments (all but JOB_NAME default from settings): ``--source`` raw base (``.../events/``),
``--target`` curated base, ``--quarantine`` quarantine base, ``--run_date``,
``--job-bookmark-option`` (enable | disable | pause), ``--reset`` (forget the bookmark first).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and not __package__:  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from etl import transforms
from etl.glue import Job, get_resolved_options
from etl.jobs.common import (
    bookmark_store,
    default_locations,
    elapsed,
    parse_date,
    parse_flag,
    read_table_or_empty,
    storage_for,
)
from etl.spark import to_spark_uri
from riskstream.clients import make_client
from riskstream.events import EVENT_TYPES
from riskstream.settings import Settings
from riskstream.storage import (
    Storage,
    drop_partitions,
    fingerprint,
    is_s3,
    join,
    register_partitions,
    register_table,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

JOB_NAME = "raw_to_curated"
CONTEXT = "raw_events"  # the bookmark's transformation context
REQUIRED = ("JOB_NAME",)
QUARANTINE_TABLE = "etl_quarantine"


class UnbalancedRunError(RuntimeError):
    """Rows in != out + quarantined + duplicates: a bug; the bookmark is not committed."""


def options(settings: Settings, **overrides: str) -> dict[str, str]:
    """The job's optional arguments with their defaults from ``settings``."""
    where = default_locations(settings)
    values = {
        "JOB_NAME": JOB_NAME,
        "source": where["raw"],
        "target": where["curated"],
        "quarantine": where["quarantine"],
        "run_date": datetime.now(UTC).date().isoformat(),
        "job_bookmark_option": "job-bookmark-enable",
        "reset": "false",
    }
    values.update(overrides)
    return values


def run(spark: SparkSession, settings: Settings, args: Mapping[str, str]) -> dict[str, Any]:
    """The body of the Glue script: init, read pending partitions, transform, write, commit."""
    started = time.perf_counter()
    source, target, quarantine = args["source"], args["target"], args["quarantine"]
    run_date = parse_date("run_date", args.get("run_date", ""))
    storage = storage_for(settings, source, target, quarantine)
    store = bookmark_store(settings, storage, target)
    if parse_flag("reset", args.get("reset", "false")):
        store.reset(args["JOB_NAME"])
    job = Job(store).init(args["JOB_NAME"], args)

    listed = storage.list_partitions(source)
    prints = {dt: fingerprint(files) for dt, files in listed.items()}
    pending = job.pending(CONTEXT, prints)
    report: dict[str, Any] = {
        "job": job.name,
        "run_id": job.run_id,
        "run_date": run_date.isoformat(),
        "source": source,
        "target": target,
        "quarantine": quarantine,
        "bookmark_option": job.option,
        "partitions_seen": len(listed),
        "partitions_processed": pending,
        "files_read": sum(len(listed[dt]) for dt in pending),
    }
    if not pending:
        logger.info(
            "%s: no new or changed raw partitions under %s; nothing to do", job.name, source
        )
        report.update(_empty_counts())
        report["seconds"] = elapsed(started)
        _save_report(storage, target, report)
        job.commit()
        return report

    # Materialised once: the count and the six writes below read it instead of re-parsing the
    # JSON, and their plans start from the checkpoint instead of the long validation plan.
    validated, classified = _read_and_classify(spark, storage, source, target, pending)
    classified = classified.localCheckpoint(eager=True)
    validated.unpersist()  # persisted only to build the checkpoint
    try:
        counts = [r.asDict() for r in _counts(classified).collect()]
        report.update(_summarise(counts))
        _check(report)
        written = _write(spark, storage, classified, counts, target, quarantine, pending)
    finally:
        classified.unpersist()
    if is_s3(target):
        _catalog(settings, target, quarantine, written, pending)
    report["partitions_written"] = written
    report["seconds"] = elapsed(started)
    _save_report(storage, target, report)
    job.mark(CONTEXT, {dt: prints[dt] for dt in pending})
    job.commit()
    return report


def _read_and_classify(
    spark: SparkSession, storage: Storage, source: str, target: str, pending: Sequence[str]
) -> tuple[DataFrame, DataFrame]:
    """(validated lines, persisted; classified lines) for the pending partitions."""
    from pyspark.sql import functions as F

    paths = [to_spark_uri(join(source, f"dt={dt}")) for dt in pending]
    lines = (
        spark.read.option("basePath", to_spark_uri(source))
        .text(paths)
        .select(
            "value",
            F.col("dt").cast("string").alias("dt"),
            F.input_file_name().alias("source_file"),
        )
    )
    # Accounts opened in earlier runs; the partitions being rewritten are read from raw instead.
    opened = read_table_or_empty(
        spark,
        storage,
        join(target, "account_opened"),
        transforms.curated_schema("account_opened"),
    )
    known = opened.where(~F.col("dt").isin(*pending)).select("account_id")
    validated = transforms.validate_events(transforms.parse_lines(lines), datetime.now(UTC))
    validated = validated.persist()
    return validated, transforms.classify_events(validated, known)


def _counts(classified: DataFrame) -> DataFrame:
    return classified.groupBy("dt", "status", "event_type", "reason").count()


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
    target: str,
    quarantine: str,
    pending: Sequence[str],
) -> dict[str, list[str]]:
    """Write each table's partitions (dynamic overwrite); clear pending partitions left empty."""
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    written: dict[str, list[str]] = {}
    outputs: dict[str, tuple[DataFrame, str]] = {
        t: (transforms.curated_table(classified, t), join(target, t)) for t in EVENT_TYPES
    }
    outputs[QUARANTINE_TABLE] = (transforms.quarantine_table(classified), quarantine)
    for table, (frame, uri) in outputs.items():
        if table == QUARANTINE_TABLE:
            status, wanted = transforms.STATUS_QUARANTINED, None
        else:
            status, wanted = transforms.STATUS_OK, table
        dts = sorted(
            {
                r["dt"]
                for r in counts
                if r["status"] == status and (wanted is None or r["event_type"] == wanted)
            }
        )
        for dt in sorted(set(pending) - set(dts)):
            if storage.delete_prefix(join(uri, f"dt={dt}")):
                logger.info("%s: dt=%s is empty after this run; removed its old files", table, dt)
        if dts:
            # One file per dt partition: without the shuffle every task writes a file into every
            # partition it touches, and on S3 each file costs several requests plus a commit copy.
            frame.repartition("dt").write.mode("overwrite").partitionBy("dt").parquet(
                to_spark_uri(uri)
            )
        written[table] = dts
    return written


def _catalog(
    settings: Settings,
    target: str,
    quarantine: str,
    written: dict[str, list[str]],
    pending: Sequence[str],
) -> None:
    glue = make_client(settings, "glue")
    database = settings.glue_database
    for table, dts in written.items():
        if table == QUARANTINE_TABLE:
            name, uri, schema = table, quarantine, transforms.quarantine_schema()
            description = "raw events the ETL rejected, with a reason (riskstream)"
        else:
            name, uri, schema = f"curated_{table}", join(target, table), None
            schema = transforms.curated_schema(table)
            description = f"curated {table} events, typed and de-duplicated (riskstream)"
        if not dts and not _table_exists(glue, database, name):
            continue
        register_table(glue, database, name, uri, schema, "dt", description)
        register_partitions(glue, database, name, uri, schema, "dt", dts)
        emptied = sorted(set(pending) - set(dts))
        if emptied:
            drop_partitions(glue, database, name, emptied)


def _table_exists(glue: Any, database: str, name: str) -> bool:
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        return False
    return True


def _save_report(storage: Storage, target: str, report: dict[str, Any]) -> None:
    uri = join(target, "_runs", report["job"], f"{report['run_id']}.json")
    storage.put_json(uri, report)
    report["report_uri"] = uri
    logger.info("%s: run report saved to %s", report["job"], uri)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry: settings from the environment, arguments from argv."""
    from etl.spark import build_spark
    from riskstream.logs import configure_logging

    configure_logging()
    settings = Settings.from_env()
    argv = list(sys.argv if argv is None else argv)
    args = get_resolved_options(argv, REQUIRED, options(settings))
    spark = build_spark(settings, args["JOB_NAME"])
    report = run(spark, settings, args)
    return 0 if report["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
