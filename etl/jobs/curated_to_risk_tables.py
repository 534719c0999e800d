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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import layout, risktables
from etl.jobs.common import (
    PortfolioRun,
    default_locations,
    job_options,
    open_portfolio_run,
    portfolio_of,
    register_partitioned,
    submit,
)
from etl.jobs.curated_to_features import read_curated
from riskstream import names
from riskstream.settings import Settings
from riskstream.storage import is_s3, join

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
    portfolio, settings = portfolio_of(settings, overrides)
    return job_options(
        JOB_NAME,
        overrides,
        portfolio=portfolio,
        source=default_locations(settings)["curated"],
        target=names.risk_tables_location(settings) + "/",
    )


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
    job_run = open_portfolio_run(settings, args, TABLES)
    portfolio, source, target = job_run.portfolio, job_run.source, job_run.target
    curated = {
        t: f.cache()
        for t, f in read_curated(
            spark, job_run.storage, source, None, job_run.manifests, portfolio, TABLES
        ).items()
    }
    as_of = risktables.as_of(curated["statement"])
    if as_of is None:
        raise NoStatementsError(
            f"portfolio {portfolio!r} has no curated statements under {source}: run the "
            "producer and `riskstream etl raw-to-curated` first"
        )
    built = build(curated)
    rows = {
        name: _write(job_run, frame, join(target, name), as_of) for name, frame in built.items()
    }
    if is_s3(target):
        for name, frame in built.items():
            register_partitioned(
                job_run.settings,
                names.risk_table(name, portfolio),
                join(target, name),
                frame.schema,
                names.AS_OF,
                [as_of],
                f"{DESCRIPTIONS[name]} (riskstream)",
            )
    for cached in curated.values():
        cached.unpersist()
    report = job_run.report(
        as_of=as_of, tables={names.risk_table(n, portfolio): r for n, r in rows.items()}
    )
    job_run.finish(report, [as_of])
    logger.info("%s: %s as of %s", job_run.job.name, report["tables"], as_of)
    return report


def _write(job_run: PortfolioRun, frame: DataFrame, table: str, as_of: str) -> int:
    """One file for the snapshot, staged locally and put at ``as_of=<as_of>/part-00000.parquet``
    (one PUT replaces it, no rename on S3); returns its row count."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="riskstream-stage-") as staging:
        out = Path(staging) / "table"
        frame.coalesce(1).write.mode("overwrite").parquet(str(out))
        files = sorted(out.glob("*.parquet"))
        layout.replace_files(job_run.storage, {join(table, f"{names.AS_OF}={as_of}"): files})
        return sum(pq.read_metadata(f).num_rows for f in files)


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry: settings from the environment, arguments from argv."""
    submit(argv, options, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
