"""Every shared name, defined once: dataset locations, tables, registry aliases and tags, the
scores table's columns and the pipeline's defaults.

Packages meet through these names, never through each other's internals. Pure module: no I/O,
no heavy imports. Bucket names come from :meth:`riskstream.settings.Settings.bucket`; the
prefixes and keys below are the paths inside those buckets.
"""

from __future__ import annotations

from typing import Any, Final

# ---- S3 locations inside the role buckets (bucket role -> prefix or key) ---------------------
RAW_EVENTS_PREFIX: Final = "events"  # raw bucket: landed events (gzip JSON lines)
INGEST_QUARANTINE_PREFIX: Final = "ingest"  # quarantine bucket: bad records from the stream
ETL_QUARANTINE_PREFIX: Final = "etl"  # quarantine bucket: rows the ETL refused
FEATURES_PREFIX: Final = "features"  # features bucket: the feature table
SCORES_PREFIX: Final = "scores"  # scores bucket: the scores table
MONITORING_PREFIX: Final = "monitoring"  # scores bucket: PSI reports per score date
ORACLE_KEY: Final = "oracle/synthetic/true_pd.parquet"  # artifacts bucket: synthetic true PDs
ETL_BOOKMARKS_PREFIX: Final = "etl/bookmarks"  # artifacts bucket: Glue-style job bookmarks
PIPELINE_RUNS_PREFIX: Final = "pipeline-runs"  # artifacts bucket: failure notes and summaries
MLFLOW_ARTIFACTS_PREFIX: Final = "mlflow"  # artifacts bucket: MLflow's artifact store

# ---- partition keys ---------------------------------------------------------------------------
OBS_DATE: Final = "obs_date"  # features: the observation date
SCORE_DATE: Final = "score_date"  # scores and monitoring: the score date

# ---- Glue catalog tables (in the database Settings.glue_database) -----------------------------
FEATURES_TABLE: Final = "features"
SCORES_TABLE: Final = "scores"
CURATED_TABLE_PREFIX: Final = "curated_"  # curated_<event type>


def curated_table_name(event_type: str) -> str:
    """The Glue table of one curated event type, e.g. ``curated_statement``."""
    return f"{CURATED_TABLE_PREFIX}{event_type}"


# ---- the model registry -----------------------------------------------------------------------
CHAMPION_ALIAS: Final = "champion"
CHALLENGER_ALIAS: Final = "challenger"
# model version tags (docs/CONTRACTS.md)
TAG_MODEL_TYPE: Final = "model_type"  # lr | rf | xgb
TAG_THRESHOLD: Final = "threshold"  # the cost-optimal decision threshold
TAG_ROC_AUC: Final = "roc_auc"
TAG_KS: Final = "ks"
TAG_DECISION_REASON: Final = "decision_reason"
TAG_PROMOTED_AT: Final = "promoted_at"
TAG_REPLACED_BY: Final = "replaced_by"
BASELINE_ARTIFACT: Final = "baseline/baseline.json"  # PSI baseline in the model's run

# ---- the scores table: each column and the module that computes it ---------------------------
N_REASONS: Final = 3
SCORES_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("account_id", "string"),  # from the features table
    ("obs_date", "date"),  # from the features table
    ("pd", "double"),  # serving.scoring: the champion's probability of default
    ("score", "int"),  # serving.scoring.pd_to_score: 300-850 points
    ("risk_tier", "string"),  # serving.scoring.assign_tiers
    ("decision", "string"),  # serving.scoring.decision_for: approve / review / decline
    *((f"reason_{i}", "string") for i in range(1, N_REASONS + 1)),  # serving.scoring.top_reasons
    ("model_name", "string"),  # the registered model
    ("model_version", "string"),  # the champion's version
    ("label", "int"),  # from the features table when known (backtests)
    ("exposure", "double"),  # credit_limit from the features table
)

# ---- pipeline defaults: DAG params, CLI defaults and the training config read these ------------
DEFAULT_SOURCE: Final = "synthetic"
DEFAULT_ACCOUNTS: Final = 2000
DEFAULT_MONTHS: Final = 12
DEFAULT_SEED: Final = 7
DEFAULT_TRAIN_BUDGET_SECONDS: Final = 900  # an upper guard only: the trial count bounds it
DEFAULT_MAX_TRIALS: Final = 12
DEFAULT_MIN_KS: Final = 0.20
DEFAULT_MAX_ECE: Final = 0.05

PIPELINE_DEFAULTS: Final[dict[str, Any]] = {
    "source": DEFAULT_SOURCE,
    "accounts": DEFAULT_ACCOUNTS,
    "months": DEFAULT_MONTHS,
    "seed": DEFAULT_SEED,
    "csv_path": "",
    "csv_mapping": "",
    "taiwan_path": "",
    "train_budget_seconds": DEFAULT_TRAIN_BUDGET_SECONDS,
    "promote_override": False,  # promote even if the champion cannot be evaluated (recorded)
    "min_ks": DEFAULT_MIN_KS,
    "max_ece": DEFAULT_MAX_ECE,
    "reset_bookmarks": False,
}
"""The pipeline DAG's params and their defaults (the trigger form shows them)."""


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/part/part`` with single slashes."""
    path = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"
