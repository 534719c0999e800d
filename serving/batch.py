"""The batch scoring job: champion + latest feature partition -> scores partition + PSI report.

One portfolio at a time (the settings'): reads its feature partitions
(``names.features_location``), writes ``names.scores_location(settings, score_date)`` (a rerun
replaces the partition), registers the portfolio's scores table and partition in the Glue
catalog, and stores the PSI report at ``names.monitoring_location(settings, score_date)``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstream.progress import Progress
from riskstream.settings import Settings
from serving import storage
from serving.monitoring import PSI_ALERT, monitoring_report
from serving.registry import Champion, load_champion
from serving.scoring import ScoringConfig, build_scores_table, explain

logger = logging.getLogger(__name__)


class ScoringJobError(RuntimeError):
    """The job cannot run: the message names what is missing (features, champion)."""


def parse_date(value: dt.date | str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ScoringJobError(f"score_date={value!r} is not a date (YYYY-MM-DD)") from None


def pick_feature_date(available: list[dt.date], score_date: dt.date) -> dt.date:
    """The latest feature partition on or before ``score_date``."""
    usable = [d for d in available if d <= score_date]
    if not usable:
        have = ", ".join(d.isoformat() for d in available) or "none"
        raise ScoringJobError(
            f"no feature partition on or before score_date={score_date.isoformat()} "
            f"(partitions: {have}); run the features job first (riskstream etl features)"
        )
    return max(usable)


def scores_table(
    champion: Champion,
    features: pd.DataFrame,
    config: ScoringConfig,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Score ``features`` and build the Arrow table plus the PSI report for it (``on_rows``:
    told each scored chunk's rows)."""
    result = explain(champion.pipeline, features, config, on_rows=on_rows)
    table = build_scores_table(result, features, champion.name, champion.version)
    if result.source_contribs is not None and len(result.source_names):
        importance = np.abs(result.source_contribs).mean(axis=0)
        order = [result.source_names[i] for i in np.argsort(-importance, kind="stable")]
    else:
        order = list(champion.features)
    values = {
        name: (
            pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64)
            if pd.api.types.is_numeric_dtype(features[name])
            else features[name].to_numpy(dtype=object)
        )
        for name in order
        if name in features.columns
    }
    # every input with a baseline gets its PSI: the dashboard shows drift per input
    report = monitoring_report(
        champion.baseline, result.pd, result.score, values, order, top_n=len(order)
    )
    return table, report


def run_batch(
    settings: Settings,
    score_date: dt.date | str | None = None,
    champion: Champion | None = None,
    config: ScoringConfig | None = None,
) -> dict[str, Any]:
    """Score the latest feature partition with the champion; return the run report."""
    day = parse_date(score_date)
    started = time.perf_counter()
    obs_date = pick_feature_date(storage.feature_partitions(settings), day)
    features = storage.read_features(settings, obs_date).to_pandas()
    if features.empty:
        raise ScoringJobError(f"the feature partition obs_date={obs_date} has no rows")
    if "account_id" not in features.columns:
        raise ScoringJobError(f"the feature partition obs_date={obs_date} has no account_id column")
    champion = champion or load_champion(settings)
    with Progress.in_state_dir(settings.state_dir, "score", len(features), "accounts") as bar:
        table, psi = scores_table(champion, features, champion.config(config), on_rows=bar.update)
    uri = storage.write_scores(settings, table, day)
    storage.register_scores_partition(settings, table.schema, day)
    psi_doc = {
        "score_date": day.isoformat(),
        "obs_date": obs_date.isoformat(),
        "model_name": champion.name,
        "model_version": champion.version,
        "rows": table.num_rows,
        "alert_threshold": PSI_ALERT,
        **psi,
    }
    psi_uri = storage.write_monitoring(settings, day, psi_doc)
    if psi.get("flag"):
        logger.warning("PSI above %.2f for score_date=%s: see %s", PSI_ALERT, day, psi_uri)
    tiers = pd.Series(table.column("risk_tier").to_pylist()).value_counts().to_dict()
    report = {
        "portfolio": settings.portfolio,
        "score_date": day.isoformat(),
        "obs_date": obs_date.isoformat(),
        "rows": table.num_rows,
        "model_name": champion.name,
        "model_version": champion.version,
        "scores_uri": uri,
        "psi_uri": psi_uri,
        "psi_score": (psi.get("score") or {}).get("psi"),
        "psi_flag": bool(psi.get("flag")),
        "tiers": {str(k): int(v) for k, v in tiers.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info(
        "scored %d accounts (obs_date %s) with %s v%s into %s in %.1fs",
        report["rows"],
        obs_date,
        champion.name,
        champion.version,
        uri,
        report["seconds"],
    )
    return report
