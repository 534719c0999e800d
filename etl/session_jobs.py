"""The bodies of the ETL jobs, the same on the warm Spark session and in a task's own process.

:mod:`etl.session_server` runs them on its long-lived session; :mod:`etl.tasks` runs them on a
session of its own when no warm session serves its settings. Each takes the Spark session and
the settings first, then the job's keyword arguments (JSON values), and returns its run report.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from etl.session_protocol import (
    COMPACT,
    CURATED_TO_FEATURES,
    CURATED_TO_RISK_TABLES,
    RAW_TO_CURATED,
)
from riskstream.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _raw_to_curated_job(
    spark: SparkSession, settings: Settings, run_date: str, reset: bool = False
) -> dict[str, Any]:
    from etl.jobs import raw_to_curated as job

    args = job.options(settings, run_date=run_date, reset=str(bool(reset)).lower())
    return job.run(spark, settings, args)


def _curated_to_features_job(
    spark: SparkSession,
    settings: Settings,
    run_date: str,
    obs_dates: Sequence[str] = (),
    lookback_months: int | None = None,
    performance_months: int | None = None,
    portfolio: str | None = None,
) -> dict[str, Any]:
    from etl.jobs import curated_to_features as job

    settings = settings.for_portfolio(portfolio)
    windows: dict[str, str] = {}
    if lookback_months is not None:
        windows["lookback_months"] = str(lookback_months)
    if performance_months is not None:
        windows["performance_months"] = str(performance_months)
    args = job.options(settings, run_date=run_date, obs_dates=",".join(obs_dates), **windows)
    return job.run(spark, settings, args)


def _compact_job(
    spark: SparkSession, settings: Settings, tables: Sequence[str] | None, curated: str
) -> dict[str, Any]:
    from etl.compact import compact_curated
    from etl.jobs import raw_to_curated as r2c
    from etl.jobs.common import default_locations, storage_for
    from etl.layout import load_manifest
    from riskstream.storage import is_s3

    storage = storage_for(settings, curated)
    report = compact_curated(spark, storage, curated, tables)
    if is_s3(curated) and report["partitions_compacted"]:
        chosen = r2c._tables(curated, default_locations(settings)["quarantine"])
        chosen = {t: v for t, v in chosen.items() if t in report["tables"]}
        manifests = {t: load_manifest(storage, uri, key) for t, (uri, key) in chosen.items()}
        r2c._catalog(settings, chosen, manifests)
    return report


def _curated_to_risk_tables_job(
    spark: SparkSession, settings: Settings, run_date: str, portfolio: str | None = None
) -> dict[str, Any]:
    from etl.jobs import curated_to_risk_tables as job

    settings = settings.for_portfolio(portfolio)
    return job.run(spark, settings, job.options(settings, run_date=run_date))


def _with_progress(name: str, body: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``body`` with its Spark tasks counted as it runs (etl.spark_progress), so the run's
    console and the job's log show its pace. ``body``'s signature shows through (``wraps``):
    the server checks a request's arguments against it before running anything."""

    @functools.wraps(body)
    def job(spark: SparkSession, settings: Settings, **kwargs: Any) -> dict[str, Any]:
        from etl.spark_progress import spark_progress

        with spark_progress(spark, settings.state_dir, name):
            return body(spark, settings, **kwargs)

    return job


SESSION_JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    name: _with_progress(name, body)
    for name, body in {
        RAW_TO_CURATED: _raw_to_curated_job,
        CURATED_TO_FEATURES: _curated_to_features_job,
        COMPACT: _compact_job,
        CURATED_TO_RISK_TABLES: _curated_to_risk_tables_job,
    }.items()
}
"""Each job's body, by its name in :data:`etl.session_protocol.JOB_NAMES`."""
