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
) -> dict[str, Any]:
    """Build features for ``obs_dates`` (derived from the data when None)."""
    from etl.jobs import curated_to_features as job
    from etl.spark import build_spark

    spark = build_spark(settings, job.JOB_NAME)
    chosen = ",".join(_iso(d) for d in obs_dates) if obs_dates else ""
    args = job.options(settings, run_date=_iso(run_date), obs_dates=chosen)
    return job.run(spark, settings, args)


def scoring_features(settings: Settings, score_date: date | str) -> dict[str, Any]:
    """Features for scoring: observation date = ``score_date``, label null."""
    return curated_to_features(settings, score_date, obs_dates=[score_date])
