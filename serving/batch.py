"""The batch scoring job: champion + latest feature partition -> scores partition + PSI report.

Reads ``s3://{prefix}-features/features/obs_date=.../``, writes
``s3://{prefix}-scores/scores/score_date=YYYY-MM-DD/part-00000.parquet`` (a rerun replaces the
partition), registers the ``scores`` table and partition in the Glue catalog, and stores the PSI
report at ``s3://{prefix}-scores/monitoring/score_date=YYYY-MM-DD/psi.json``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstream.names import N_REASONS, SCORES_COLUMNS
from riskstream.settings import Settings
from serving import storage
from serving.monitoring import PSI_ALERT, monitoring_report
from serving.registry import Champion, load_champion
from serving.scoring import ScoringConfig, explain

logger = logging.getLogger(__name__)

_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "double": pa.float64(),
    "int": pa.int32(),
}
SCORES_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in SCORES_COLUMNS])
"""The scores table's Arrow schema, from :data:`riskstream.names.SCORES_COLUMNS`."""


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
    champion: Champion, features: pd.DataFrame, config: ScoringConfig
) -> tuple[pa.Table, dict[str, Any]]:
    """Score ``features`` and build the Arrow table plus the PSI report for it."""
    result = explain(champion.pipeline, features, config)
    n = len(features)
    label = (
        pd.to_numeric(features["label"], errors="coerce").to_numpy(dtype=np.float64)
        if "label" in features.columns
        else np.full(n, np.nan)
    )
    exposure = (
        pd.to_numeric(features["credit_limit"], errors="coerce").to_numpy(dtype=np.float64)
        if "credit_limit" in features.columns
        else np.full(n, np.nan)
    )
    obs = (
        pd.to_datetime(features["obs_date"]).dt.date.to_numpy()
        if "obs_date" in features.columns
        else np.full(n, None)
    )
    columns = {
        "account_id": pa.array(features["account_id"].astype(str).to_numpy(), pa.string()),
        "obs_date": pa.array(obs, pa.date32()),
        "pd": pa.array(result.pd, pa.float64()),
        "score": pa.array(result.score, pa.int32()),
        "risk_tier": pa.array(result.risk_tier, pa.string()),
        "decision": pa.array(result.decision, pa.string()),
        **{
            f"reason_{i}": pa.array(result.reasons[i - 1], pa.string())
            for i in range(1, N_REASONS + 1)
        },
        "model_name": pa.array([champion.name] * n, pa.string()),
        "model_version": pa.array([champion.version] * n, pa.string()),
        "label": pa.array(
            np.where(np.isnan(label), 0, label).astype(np.int32), pa.int32(), mask=np.isnan(label)
        ),
        "exposure": pa.array(exposure, pa.float64(), mask=np.isnan(exposure)),
    }
    table = pa.table(columns, schema=SCORES_SCHEMA)
    if result.source_contribs is not None and len(result.source_names):
        importance = np.abs(result.source_contribs).mean(axis=0)
        order = [result.source_names[i] for i in np.argsort(-importance, kind="stable")]
    else:
        order = list(champion.features)
    numeric = {
        name: pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64)
        for name in order
        if name in features.columns and pd.api.types.is_numeric_dtype(features[name])
    }
    report = monitoring_report(champion.baseline, result.pd, result.score, numeric, order)
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
    table, psi = scores_table(champion, features, champion.config(config))
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
