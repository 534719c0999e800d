"""Entry functions the Airflow DAG calls (docs/CONTRACTS.md); each returns its run report.

Each Spark job runs on the warm Spark session when one serves these settings
(:mod:`etl.session`, started by ``riskstream run`` or ``riskstream spark up``), otherwise in a
session of its own in this process. :data:`etl.session_jobs.SESSION_JOBS` are the bodies both
paths run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from etl.session_protocol import (
    COMPACT,
    CURATED_TO_FEATURES,
    CURATED_TO_RISK_TABLES,
    RAW_TO_CURATED,
)
from riskstream.settings import Settings

logger = logging.getLogger(__name__)


def _iso(day: date | str) -> str:
    return day.isoformat() if isinstance(day, date) else str(day)


def raw_to_curated(settings: Settings, run_date: date | str, reset: bool = False) -> dict[str, Any]:
    """Curate the raw partitions not processed yet (all of them with ``reset``)."""
    return _run(settings, RAW_TO_CURATED, {"run_date": _iso(run_date), "reset": reset})


def curated_to_features(
    settings: Settings,
    run_date: date | str,
    obs_dates: Sequence[date | str] | None = None,
    lookback_months: int | None = None,
    performance_months: int | None = None,
) -> dict[str, Any]:
    """Build the settings' portfolio's features for ``obs_dates`` (derived from its data when
    None); the windows default to the job's (``etl.jobs.curated_to_features.options``)."""
    chosen = [_iso(d) for d in obs_dates] if obs_dates else []
    kwargs: dict[str, Any] = {
        "run_date": _iso(run_date),
        "obs_dates": chosen,
        "portfolio": settings.portfolio,
    }
    if lookback_months is not None:
        kwargs["lookback_months"] = lookback_months
    if performance_months is not None:
        kwargs["performance_months"] = performance_months
    return _run(settings, CURATED_TO_FEATURES, kwargs)


def scoring_features(settings: Settings, score_date: date | str) -> dict[str, Any]:
    """Features for scoring: observation date = ``score_date``, label null."""
    return curated_to_features(settings, score_date, obs_dates=[score_date])


def risk_tables(settings: Settings, run_date: date | str) -> dict[str, Any]:
    """The settings' portfolio's vintage, roll-rate and delinquency-bucket tables
    (:mod:`etl.risktables`), one snapshot as of its last statement month, in the catalog."""
    kwargs = {"run_date": _iso(run_date), "portfolio": settings.portfolio}
    return _run(settings, CURATED_TO_RISK_TABLES, kwargs)


def compact(
    settings: Settings, tables: Sequence[str] | None = None, curated: str | None = None
) -> dict[str, Any]:
    """Merge the small files of the curated tables' partitions, then point the catalog at them."""
    from etl.jobs.common import default_locations, storage_for
    from etl.layout import load_manifest, table_key
    from etl.transforms import EVENT_TYPES
    from riskstream.storage import join

    target = curated or default_locations(settings)["curated"]
    storage = storage_for(settings, target)
    names = list(tables) if tables else list(EVENT_TYPES)
    # Reading the manifests is cheap; a JVM start is not: only start Spark when there is work.
    if all(t in EVENT_TYPES for t in names) and not any(
        len(entry["files"]) > 1
        for t in names
        for entry in load_manifest(storage, join(target, t), table_key(t))["partitions"].values()
    ):
        logger.info("compaction: every curated partition is one file; nothing to do")
        return {
            "tables": {t: {"partitions_compacted": []} for t in names},
            "partitions_compacted": 0,
        }
    return _run(settings, COMPACT, {"tables": list(tables) if tables else None, "curated": target})


def _run(settings: Settings, job: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``job`` on the warm session if one serves these settings, else on a session of our own."""
    from etl.session import submit

    report = submit(settings, job, kwargs)
    if report is not None:
        return report
    from etl.session_jobs import SESSION_JOBS
    from etl.spark import build_spark

    return SESSION_JOBS[job](build_spark(settings, job), settings, **kwargs)
