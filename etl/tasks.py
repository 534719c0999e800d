"""Entry functions the Airflow DAG calls (docs/CONTRACTS.md); each returns its run report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from riskstream.settings import Settings

logger = logging.getLogger(__name__)


def _iso(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)


def raw_to_curated(settings: Settings, run_date: date | str, reset: bool = False) -> dict[str, Any]:
    """Curate the raw partitions not processed yet (all of them with ``reset``)."""
    from etl.jobs import raw_to_curated as job
    from etl.spark import build_spark

    spark = build_spark(settings, job.JOB_NAME)
    args = job.options(settings, run_date=_iso(run_date), reset=str(reset).lower())
    return job.run(spark, settings, args)


def curated_to_features(
    settings: Settings,
    run_date: date | str,
    obs_dates: Sequence[date | str] | None = None,
    lookback_months: int | None = None,
    performance_months: int | None = None,
) -> dict[str, Any]:
    """Build features for ``obs_dates`` (derived from the data when None); the windows default to
    the job's (``etl.jobs.curated_to_features.options``)."""
    from etl.jobs import curated_to_features as job
    from etl.spark import build_spark

    spark = build_spark(settings, job.JOB_NAME)
    chosen = ",".join(_iso(d) for d in obs_dates) if obs_dates else ""
    windows: dict[str, str] = {}
    if lookback_months is not None:
        windows["lookback_months"] = str(lookback_months)
    if performance_months is not None:
        windows["performance_months"] = str(performance_months)
    args = job.options(settings, run_date=_iso(run_date), obs_dates=chosen, **windows)
    return job.run(spark, settings, args)


def scoring_features(settings: Settings, score_date: date | str) -> dict[str, Any]:
    """Features for scoring: observation date = ``score_date``, label null."""
    return curated_to_features(settings, score_date, obs_dates=[score_date])


def compact(
    settings: Settings, tables: Sequence[str] | None = None, curated: str | None = None
) -> dict[str, Any]:
    """Merge the small files of the curated tables' partitions, then point the catalog at them."""
    from etl.compact import compact_curated
    from etl.jobs import raw_to_curated as r2c
    from etl.jobs.common import default_locations, storage_for
    from etl.layout import load_manifest
    from etl.spark import build_spark
    from etl.transforms import EVENT_TYPES
    from riskstream.storage import is_s3, join

    where = default_locations(settings)
    target = curated or where["curated"]
    storage = storage_for(settings, target)
    names = list(tables) if tables else list(EVENT_TYPES)
    # Reading the manifests is cheap; a JVM start is not: only start Spark when there is work.
    if all(t in EVENT_TYPES for t in names) and not any(
        len(entry["files"]) > 1
        for t in names
        for entry in load_manifest(storage, join(target, t), "event_month")["partitions"].values()
    ):
        logger.info("compaction: every curated partition is one file; nothing to do")
        return {
            "tables": {t: {"partitions_compacted": []} for t in names},
            "partitions_compacted": 0,
        }
    spark = build_spark(settings, "compact")
    report = compact_curated(spark, storage, target, tables)
    if is_s3(target) and report["partitions_compacted"]:
        chosen = r2c._tables(target, where["quarantine"])
        chosen = {t: v for t, v in chosen.items() if t in report["tables"]}
        manifests = {t: load_manifest(storage, uri, key) for t, (uri, key) in chosen.items()}
        r2c._catalog(settings, chosen, manifests)
    return report
