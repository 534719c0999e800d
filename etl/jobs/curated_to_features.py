"""Glue-style job: curated tables -> one feature row per account and observation date.

Runs unchanged from ``riskstream etl curated-to-features`` and from spark-submit::

    JARS=.jars/hadoop-aws-3.3.1.jar:.jars/aws-java-sdk-bundle-1.11.901.jar
    .venv/bin/spark-submit --driver-class-path "$JARS" \\
        etl/jobs/curated_to_features.py --JOB_NAME curated_to_features --run_date 2026-11-21

Arguments (all but JOB_NAME default from settings): ``--portfolio`` (whose events: the curated
rows whose ``source`` is it; the settings' portfolio by default), ``--source`` curated base,
``--target`` features base (the portfolio's feature table), ``--run_date``, ``--obs_dates``
(comma-separated; empty = derived from the portfolio's data, ``run_date`` = scoring features at
the run date; empty: the training panel, one date a month with a full lookback and a covered
performance window plus the current date, ``etl.features.panel_observation_dates``),
``--lookback_months`` (6), ``--performance_months`` (1),
``--job-bookmark-option``. Features depend on each account's whole history, so every run
recomputes the requested observation dates and replaces their partitions; the bookmark
records what was built.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import chain, features, layout, transforms
from etl.glue import GlueArgumentError
from etl.jobs.common import (
    PortfolioRun,
    default_locations,
    job_options,
    open_portfolio_run,
    parse_date,
    portfolio_of,
    register_partitioned,
    submit,
)
from etl.spark import to_spark_uri
from riskstream import names
from riskstream.settings import Settings
from riskstream.storage import Storage, is_s3, join

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

JOB_NAME = "curated_to_features"
TABLES = ("account_opened", "statement", "payment", "purchase", "outcome")


class NoObservationDateError(ValueError):
    """No observation date was given and none can be derived from the data."""


def options(settings: Settings, **overrides: str) -> dict[str, str]:
    portfolio, settings = portfolio_of(settings, overrides)
    where = default_locations(settings)
    return job_options(
        JOB_NAME,
        overrides,
        portfolio=portfolio,
        source=where["curated"],
        target=where["features"],
        obs_dates="",
        lookback_months=str(names.DEFAULT_LOOKBACK_MONTHS),
        performance_months=str(names.DEFAULT_PERFORMANCE_MONTHS),
    )


def _int(args: Mapping[str, str], name: str) -> int:
    try:
        return int(args[name])
    except (KeyError, ValueError):
        raise GlueArgumentError(f"--{name} {args.get(name)!r} is not an integer") from None


def read_curated(
    spark: SparkSession,
    storage: Storage,
    source: str,
    months: Mapping[str, Sequence[str] | None] | None = None,
    manifests: Mapping[str, Any] | None = None,
    portfolio: str | None = None,
    tables: Sequence[str] = TABLES,
) -> dict[str, DataFrame]:
    """Every curated table (empty, with its schema, when nothing was written yet); ``months``
    limits a table to those event months (partition pruning: only their files are read);
    ``portfolio`` keeps that portfolio's rows only (the lake holds every portfolio's events)."""
    from pyspark.sql import functions as F

    months = months or {}
    manifests = manifests or {}
    out = {}
    for t in tables:
        frame = layout.read_table(
            spark,
            storage,
            join(source, t),
            transforms.curated_schema(t),
            layout.table_key(t),
            months.get(t),
            manifests.get(t),
        )
        out[t] = frame if portfolio is None else frame.where(F.col("source") == portfolio)
    return out


def months_needed(obs_dates: Sequence[date], windows: features.FeatureWindows) -> list[str]:
    """The event months the lookback windows of ``obs_dates`` can reach, one month of margin on
    each side (a statement's date and its event time may fall in neighbouring months)."""
    out: set[str] = set()
    for obs in obs_dates:
        index = obs.year * 12 + obs.month - 1  # the month of obs_date
        for back in range(-1, windows.lookback_months + 2):
            y, m = divmod(index - back, 12)
            out.add(f"{y:04d}-{m + 1:02d}")
    return sorted(out)


def run(spark: SparkSession, settings: Settings, args: Mapping[str, str]) -> dict[str, Any]:
    """Init, read curated, build features for the observation dates, write, catalog, commit."""
    windows = features.FeatureWindows(
        lookback_months=_int(args, "lookback_months"),
        performance_months=_int(args, "performance_months"),
    )
    job_run = open_portfolio_run(settings, args, TABLES)
    job, storage, manifests = job_run.job, job_run.storage, job_run.manifests
    portfolio, source, target = job_run.portfolio, job_run.source, job_run.target
    run_date = job_run.run_date
    if not args.get("obs_dates", "").strip():
        # Deriving the date needs the statement dates of every month: one narrow column each.
        whole = read_curated(
            spark, storage, source, None, manifests, portfolio, ("statement", "outcome")
        )
    else:
        whole = {}
    obs_dates, history = _observation_dates(args.get("obs_dates", ""), run_date, whole, windows)
    needed = months_needed(obs_dates, windows)
    # Pruned: the windowed tables to the months the windows reach; opened accounts and outcomes
    # (one or two rows per account, needed whole for the population) are read entirely.
    pruned = {t: needed for t in ("statement", "payment", "purchase")}
    # Cached: each table is read by several actions (attributes, counts, the build, the summary)
    # and a Parquet file on S3 costs a HEAD and two GETs every time it is opened.
    tables = {
        t: f.cache()
        for t, f in read_curated(spark, storage, source, pruned, manifests, portfolio).items()
    }
    signature = _signature(manifests, needed, obs_dates, windows, run_date)
    done = job.pending("inputs", {portfolio: signature}) == []
    attributes = features.attribute_columns(tables["account_opened"])
    frame = chain.features_of(
        tables,
        obs_dates,
        windows,
        attributes=attributes,
        labels_known_on=run_date,
        min_history_months=history,
    )
    if done:
        logger.info("%s: curated inputs unchanged since the last run; nothing written", job.name)
        summary = _summary(spark, target, obs_dates)
    else:
        summary = _write(job_run, frame)
    rows_read = _row_counts(tables)
    report = job_run.report(
        spark_master=spark.sparkContext.master,  # where it ran: local[N] or a cluster's URL
        bookmark_option=job.option,
        obs_dates=[d.isoformat() for d in obs_dates],
        lookback_months=windows.lookback_months,
        performance_months=windows.performance_months,
        # the panel's rule: an account is a row at a date once its statements reach this far back
        min_history_months=history,
        rows_in=rows_read,
        rows_read=rows_read,
        months_read={t: (needed if t in pruned else "all") for t in TABLES},
        months_available={t: len(manifests[t]["partitions"]) for t in TABLES},
        written=not done,
        attributes=attributes,
        columns=len(frame.columns),
        **summary,
    )
    if not report["unique_keys"]:
        raise RuntimeError(f"{job.name}: (account_id, obs_date) is not unique: {summary}")
    logger.info(
        "%s: %d feature rows for %s; labels %s",
        job.name,
        report["rows_out"],
        report["obs_dates"],
        report["labels"],
    )
    if is_s3(target) and not done:
        register_partitioned(
            job_run.settings,
            names.features_table(portfolio),
            target,
            frame.schema,
            names.OBS_DATE,
            report["obs_dates"],
            "one row per account and observation date (riskstream)",
        )
    for cached in tables.values():
        cached.unpersist()
    job.mark("inputs", {portfolio: signature})
    job_run.finish(report, report["obs_dates"])
    return report


def _signature(
    manifests: Mapping[str, Any],
    months: Sequence[str],
    obs_dates: Sequence[date],
    windows: features.FeatureWindows,
    run_date: date,
) -> str:
    """What a run's output depends on: the versions of the partitions it reads and its options."""
    import hashlib
    import json

    versions = {
        t: {
            v: e["location"]
            for v, e in m["partitions"].items()
            if t not in ("statement", "payment", "purchase") or v in months
        }
        for t, m in manifests.items()
    }
    text = json.dumps(
        [
            versions,
            [d.isoformat() for d in obs_dates],
            windows.lookback_months,
            windows.performance_months,
            run_date.isoformat(),
        ],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write(job_run: PortfolioRun, frame: DataFrame) -> dict[str, Any]:
    """One file per observation date, staged locally and uploaded to a fixed key
    (``obs_date=D/part-00000.parquet``): one PUT replaces a partition, no rename on S3.
    Returns the summary counts read back from the staged files, the bytes that were uploaded."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="riskstream-stage-") as staging:
        out = Path(staging) / "features"
        frame.repartition(1, "obs_date").write.mode("overwrite").partitionBy("obs_date").parquet(
            str(out)
        )
        staged = layout.staged_partitions(out, "obs_date")
        layout.replace_files(
            job_run.storage,
            {join(job_run.target, f"obs_date={v}"): files for v, files in staged.items()},
        )
        return _staged_summary(staged)


def _staged_summary(partitions: Mapping[str, Sequence[Path]]) -> dict[str, Any]:
    """:func:`_summary`'s counts from the staged feature files (obs date -> files), by pyarrow."""
    import pyarrow.parquet as pq

    rows = keys = pos = neg = unknown = 0
    for files in partitions.values():
        accounts: set[str] = set()  # one obs date per partition: a key is an account there
        for path in files:
            table = pq.read_table(path, columns=["account_id", "label"])
            labels = table.column("label").to_pylist()
            rows += table.num_rows
            accounts.update(table.column("account_id").to_pylist())
            pos += sum(1 for v in labels if v == 1)
            neg += sum(1 for v in labels if v == 0)
            unknown += sum(1 for v in labels if v is None)
        keys += len(accounts)
    return {
        "rows_out": rows,
        "unique_keys": rows == keys,
        "labels": {"1": pos, "0": neg, "null": unknown},
    }


def _observation_dates(
    text: str,
    run_date: date,
    tables: Mapping[str, DataFrame],
    windows: features.FeatureWindows,
) -> tuple[list[date], int]:
    """The dates asked for (no history rule), or the training panel derived from the data
    (``etl.features.panel_observation_dates``) and its history rule."""
    if text.strip() == "run_date":
        return [run_date], 0
    if text.strip():
        return sorted({parse_date("obs_dates", part.strip()) for part in text.split(",")}), 0
    derived, history = chain.panel(tables, windows)
    if not derived:
        raise NoObservationDateError(
            "cannot derive an observation date: no account has both statements and an outcome; "
            "pass --obs_dates YYYY-MM-DD[,YYYY-MM-DD...] (or run_date for scoring features)"
        )
    logger.info(
        "observation dates derived from the data: %s (history rule: %d months)",
        ", ".join(d.isoformat() for d in derived),
        history,
    )
    return derived, history


def _row_counts(tables: Mapping[str, DataFrame]) -> dict[str, int]:
    """Rows per curated table, in one Spark job."""
    from functools import reduce

    from pyspark.sql import functions as F

    parts = [frame.select(F.lit(name).alias("table")) for name, frame in tables.items()]
    counted = reduce(lambda a, b: a.unionByName(b), parts).groupBy("table").count().collect()
    found = {r["table"]: int(r["count"]) for r in counted}
    return {name: found.get(name, 0) for name in tables}


def _summary(spark: SparkSession, target: str, obs_dates: Sequence[date]) -> dict[str, Any]:
    """Counts read back from what was written: rows, labels, key uniqueness."""
    from pyspark.sql import functions as F

    written = spark.read.parquet(to_spark_uri(target)).where(
        F.col("obs_date").cast("date").isin(*obs_dates)
    )
    row = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("account_id", "obs_date").alias("keys"),
        F.sum(F.when(F.col("label") == 1, 1).otherwise(0)).alias("pos"),
        F.sum(F.when(F.col("label") == 0, 1).otherwise(0)).alias("neg"),
        F.sum(F.when(F.col("label").isNull(), 1).otherwise(0)).alias("unknown"),
    ).first()
    assert row is not None
    return {
        "rows_out": int(row["rows"]),
        "unique_keys": int(row["rows"]) == int(row["keys"]),
        "labels": {
            "1": int(row["pos"] or 0),
            "0": int(row["neg"] or 0),
            "null": int(row["unknown"] or 0),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry: settings from the environment, arguments from argv."""
    submit(argv, options, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
