"""Glue-style job: curated tables -> a portfolio's vintage, roll-rate and delinquency tables.

Runs unchanged from ``riskstream etl risk-tables`` and from spark-submit::

    JARS=.jars/hadoop-aws-3.3.1.jar:.jars/aws-java-sdk-bundle-1.11.901.jar
    .venv/bin/spark-submit --driver-class-path "$JARS" \\
        etl/jobs/curated_to_risk_tables.py --JOB_NAME curated_to_risk_tables

Arguments (all but JOB_NAME default from settings): ``--portfolio`` (whose events; the
settings' portfolio by default), ``--source`` curated base, ``--target`` the portfolio's risk
tables (``names.risk_tables_location``), ``--run_date``, ``--job-bookmark-option``. Each run
recomputes the three tables (:mod:`etl.risktables`) over the portfolio's whole history and
writes one snapshot per table, ``<target>/<table>/as_of=<month of the last statement>/``,
replacing that snapshot; the catalog lists them as ``<table>_<portfolio>``
(``names.risk_table``), which ``riskstream sql`` reads (the bare names ``vintage``,
``roll_rates`` and ``delinquency`` are the latest snapshot of the settings' portfolio).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and not __package__:  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from etl import layout, risktables
from etl.glue import Job
from etl.jobs.common import (
    bookmark_store,
    default_locations,
    elapsed,
    parse_date,
    register_partitioned,
    save_report,
    storage_for,
    submit,
)
from etl.jobs.curated_to_features import read_curated
from riskstream import names
from riskstream.settings import Settings
from riskstream.storage import Storage, is_s3, join

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

JOB_NAME = "curated_to_risk_tables"
TABLES = ("account_opened", "statement", "outcome")
DESCRIPTIONS = {
    names.VINTAGE_TABLE: "cumulative default rate by opening cohort and months on book",
    names.ROLL_RATES_TABLE: "accounts rolling between delinquency buckets month to month",
    names.DELINQUENCY_TABLE: "accounts and balance per delinquency bucket and month",
}


class NoStatementsError(ValueError):
    """The portfolio has no statements: there is nothing to tabulate."""


def options(settings: Settings, **overrides: str) -> dict[str, str]:
    portfolio = overrides.get("portfolio") or settings.portfolio
    settings = settings.for_portfolio(portfolio)
    values = {
        "JOB_NAME": JOB_NAME,
        "portfolio": portfolio,
        "source": default_locations(settings)["curated"],
        "target": names.risk_tables_location(settings) + "/",
        "run_date": datetime.now(UTC).date().isoformat(),
        "job_bookmark_option": "job-bookmark-enable",
    }
    values.update(overrides)
    return values


def build(tables: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
    """The three risk tables from the curated ``account_opened``, ``statement``, ``outcome``."""
    return {
        names.VINTAGE_TABLE: risktables.vintages(
            tables["account_opened"], tables["statement"], tables["outcome"]
        ),
        names.ROLL_RATES_TABLE: risktables.roll_rates(tables["statement"]),
        names.DELINQUENCY_TABLE: risktables.delinquency_buckets(tables["statement"]),
    }


def run(spark: SparkSession, settings: Settings, args: Mapping[str, str]) -> dict[str, Any]:
    """Init, read curated, build the tables, write one snapshot each, catalog, commit."""
    started = time.perf_counter()
    source, target = args["source"], args["target"]
    run_date = parse_date("run_date", args.get("run_date", ""))
    portfolio = args.get("portfolio") or settings.portfolio
    settings = settings.for_portfolio(portfolio)
    storage = storage_for(settings, source, target)
    job = Job(bookmark_store(settings, storage, target)).init(args["JOB_NAME"], args)
    manifests = {
        t: layout.load_manifest(storage, join(source, t), layout.table_key(t)) for t in TABLES
    }
    curated = {
        t: f.cache()
        for t, f in read_curated(spark, storage, source, None, manifests, portfolio, TABLES).items()
    }
    as_of = risktables.as_of(curated["statement"])
    if as_of is None:
        raise NoStatementsError(
            f"portfolio {portfolio!r} has no curated statements under {source}: run the "
            "producer and `riskstream etl raw-to-curated` first"
        )
    built = build(curated)
    rows = {
        name: _write(spark, storage, frame, join(target, name), as_of)
        for name, frame in built.items()
    }
    if is_s3(target):
        for name, frame in built.items():
            register_partitioned(
                settings,
                names.risk_table(name, portfolio),
                join(target, name),
                frame.schema,
                names.AS_OF,
                [as_of],
                f"{DESCRIPTIONS[name]} (riskstream)",
            )
    for cached in curated.values():
        cached.unpersist()
    report: dict[str, Any] = {
        "job": job.name,
        "run_id": job.run_id,
        "run_date": run_date.isoformat(),
        "portfolio": portfolio,
        "source": source,
        "target": target,
        "as_of": as_of,
        "tables": {names.risk_table(n, portfolio): r for n, r in rows.items()},
        "seconds": elapsed(started),
    }
    save_report(storage, target, report)
    job.mark(portfolio, {as_of: run_date.isoformat()})
    job.commit()
    logger.info("%s: %s as of %s", job.name, report["tables"], as_of)
    return report


def _write(spark: SparkSession, storage: Storage, frame: DataFrame, table: str, as_of: str) -> int:
    """One file for the snapshot, staged locally and put at ``as_of=<as_of>/part-00000.parquet``
    (one PUT replaces it, no rename on S3); returns its row count."""
    import pyarrow.parquet as pq

    folder = join(table, f"{names.AS_OF}={as_of}")
    with tempfile.TemporaryDirectory(prefix="riskstream-stage-") as staging:
        out = Path(staging) / "table"
        frame.coalesce(1).write.mode("overwrite").parquet(str(out))
        files = sorted(out.glob("*.parquet"))
        keep = [f"part-{i:05d}.parquet" for i in range(len(files))]
        stale = [join(folder, f) for f in layout.list_files(storage, folder) if f not in keep]
        layout.put_files(storage, [(f, join(folder, n)) for f, n in zip(files, keep, strict=True)])
        for uri in stale:
            storage.delete(uri)
        return sum(pq.read_metadata(f).num_rows for f in files)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry: settings from the environment, arguments from argv."""
    submit(argv, options, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
