"""Every shared name, defined once: dataset locations, tables, registry aliases and tags, the
scores table's columns and the pipeline's defaults.

Packages meet through these names, never through each other's internals. Pure module: no I/O,
no heavy imports. Bucket names come from :meth:`riskstream.settings.Settings.bucket`; the
prefixes and keys below are the paths inside those buckets.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from riskstream.settings import Settings

# ---- S3 locations inside the role buckets (bucket role -> prefix or key) ---------------------
# Read through the location functions below; the prefixes are their building blocks.
RAW_EVENTS_PREFIX: Final = "events"  # raw bucket: landed events (gzip JSON lines)
INGEST_QUARANTINE_PREFIX: Final = "ingest"  # quarantine bucket: bad records from the stream
ETL_QUARANTINE_PREFIX: Final = "etl"  # quarantine bucket: rows the ETL refused
FEATURES_PREFIX: Final = "features"  # features bucket: the feature tables, one per portfolio
SCORES_PREFIX: Final = "scores"  # scores bucket: the scores tables, one per portfolio
# scores bucket: the runs of a score date that a rerun replaced (the migration between two runs)
REPLACED_SCORES_PREFIX: Final = "scores-replaced"
RISK_TABLES_PREFIX: Final = "risk"  # features bucket: vintage, roll rates, buckets per portfolio
MONITORING_PREFIX: Final = "monitoring"  # scores bucket: PSI reports per portfolio and score date
ORACLE_PREFIX: Final = "oracle"  # artifacts bucket: a synthetic portfolio's true PDs
ORACLE_FILE: Final = "true_pd.parquet"
ETL_BOOKMARKS_PREFIX: Final = "etl/bookmarks"  # artifacts bucket: Glue-style job bookmarks
PIPELINE_RUNS_PREFIX: Final = "pipeline-runs"  # artifacts bucket: failure notes and summaries
MLFLOW_ARTIFACTS_PREFIX: Final = "mlflow"  # artifacts bucket: MLflow's artifact store

# ---- partition keys ---------------------------------------------------------------------------
OBS_DATE: Final = "obs_date"  # features: the observation date

# ---- the observation panel and its windows (etl.features, training.dataset) -------------------
# Months of history before an observation date that the features read (and that an account must
# have to be a row of the training panel); months after it in which a default makes the label.
DEFAULT_LOOKBACK_MONTHS: Final = 6
DEFAULT_PERFORMANCE_MONTHS: Final = 1  # Taiwan's published definition: default next month
SYNTHETIC_PERFORMANCE_MONTHS: Final = 12  # a 12-month PD (Basel / IFRS 9 horizon)
# How the labelled rows split into train and test (training.dataset.split_rows):
SPLIT_OUT_OF_TIME: Final = "out_of_time"  # test = the latest observation dates, other accounts
SPLIT_RANDOM: Final = "stratified_random"  # test = a stratified random share of the accounts
SPLIT_STRATEGIES: Final = (SPLIT_OUT_OF_TIME, SPLIT_RANDOM)
DEFAULT_SPLIT: Final = SPLIT_OUT_OF_TIME


def synthetic_windows(months: int) -> tuple[int, int]:
    """(lookback, performance) months for a synthetic run of ``months`` activity months: the
    default lookback and a 12-month window when the data hold both and some observation dates;
    a shorter window otherwise (a short test run: the window shrinks to what the data cover,
    the whole rest of the history after the first month when even the lookback does not fit)."""
    spare = int(months) - DEFAULT_LOOKBACK_MONTHS
    if spare >= 2:
        return DEFAULT_LOOKBACK_MONTHS, min(SYNTHETIC_PERFORMANCE_MONTHS, spare)
    return DEFAULT_LOOKBACK_MONTHS, max(1, int(months) - 1)


SCORE_DATE: Final = "score_date"  # scores and monitoring: the score date
# replaced scores, under the score date: when the run was replaced (UTC, see replaced_at_stamp)
REPLACED_AT: Final = "replaced_at"
REPLACED_RUNS_KEPT: Final = 5  # replaced runs kept per score date (the oldest go first)

# ---- stream consumer applications (each has its own leases and checkpoints) --------------------
LANDING_APPLICATION: Final = "landing"  # ingestion/consumer.py: the stream into the raw bucket
LIVE_APPLICATION: Final = "live"  # serving/live.py: every event rescored into the online table


def live_application(portfolio: str) -> str:
    """The live scorer's application for one portfolio (its own leases and checkpoints)."""
    return f"{LIVE_APPLICATION}-{portfolio}"


# ---- the risk-event stream (serving/live.py writes it; README "The event contract") ------------
RISK_EVENT_TYPE: Final = "risk_changed"
RISK_EVENT_SCHEMA_VERSION: Final = 1

# ---- Glue catalog tables (in the database Settings.glue_database) -----------------------------
FEATURES_TABLE: Final = "features"  # features_<portfolio>: see features_table()
SCORES_TABLE: Final = "scores"  # scores_<portfolio>: see scores_table()
REPLACED_SCORES_TABLE: Final = "scores_replaced"  # scores_replaced_<portfolio>
CURATED_TABLE_PREFIX: Final = "curated_"  # curated_<event type>
# The analysts' risk tables (etl.risktables), <name>_<portfolio> in the catalog; `riskstream sql`
# also names the settings' portfolio's latest snapshot by the bare name (serving.sql).
VINTAGE_TABLE: Final = "vintage"
ROLL_RATES_TABLE: Final = "roll_rates"
DELINQUENCY_TABLE: Final = "delinquency"
RISK_TABLES: Final[tuple[str, ...]] = (VINTAGE_TABLE, ROLL_RATES_TABLE, DELINQUENCY_TABLE)
AS_OF: Final = "as_of"  # the risk tables' partition key: the month of the data's last statement
# Delinquency buckets of a repayment status (Taiwan's convention: <= 0 paid on time, k = k months
# late): (label, lowest status), ascending; a statement without a status is UNKNOWN_BUCKET.
DELINQUENCY_BUCKETS: Final[tuple[tuple[str, int], ...]] = (
    ("current", -(10**9)),
    ("30", 1),
    ("60", 2),
    ("90+", 3),
)
UNKNOWN_BUCKET: Final = "unknown"


def curated_table(event_type: str) -> str:
    """The Glue table of one curated event type, e.g. ``curated_statement``."""
    return f"{CURATED_TABLE_PREFIX}{event_type}"


# ---- sources and portfolios -------------------------------------------------------------------
SOURCE_SYNTHETIC: Final = "synthetic"
SOURCE_TAIWAN: Final = "taiwan"
SOURCE_CSV: Final = "csv"
SOURCES: Final[tuple[str, ...]] = (SOURCE_SYNTHETIC, SOURCE_TAIWAN, SOURCE_CSV)
"""What a producer streams: the synthetic portfolio, the Taiwan replay, or a user's own table."""


def default_portfolio(source: str) -> str:
    """The portfolio a source's events belong to when none is named: the source itself (a CSV
    run is named by its mapping's ``portfolio`` key or its file's name, ingestion.csv_replay)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return source


def _portfolio(settings: Settings, portfolio: str | None) -> str:
    return portfolio or settings.portfolio


def _sql_name(name: str) -> str:
    return name.replace("-", "_")


# ---- locations: every path one capability writes and another reads, built here only ----------
# A location is a URI without a trailing slash; callers that need a folder add it themselves.
def raw_events_location(settings: Settings) -> str:
    """Landed events, all portfolios: ``.../events/dt=YYYY-MM-DD/hr=HH/<object>``."""
    return s3_uri(settings.bucket("raw"), RAW_EVENTS_PREFIX)


def raw_event_key(partition: str, object_name: str) -> str:
    """The key of one landed object inside the raw bucket (``partition`` is ``dt=.../hr=...``)."""
    return f"{RAW_EVENTS_PREFIX}/{partition}/{object_name}"


def ingest_quarantine_location(settings: Settings) -> str:
    """Records the consumer refused, all portfolios."""
    return s3_uri(settings.bucket("quarantine"), INGEST_QUARANTINE_PREFIX)


def ingest_quarantine_key(partition: str, object_name: str) -> str:
    """The key of one quarantined object inside the quarantine bucket."""
    return f"{INGEST_QUARANTINE_PREFIX}/{partition}/{object_name}"


def etl_quarantine_location(settings: Settings) -> str:
    """Rows the ETL refused, all portfolios."""
    return s3_uri(settings.bucket("quarantine"), ETL_QUARANTINE_PREFIX)


def curated_location(settings: Settings, table: str | None = None) -> str:
    """The curated lake (all portfolios, each row carries its ``source`` = portfolio), or one
    table of it."""
    return s3_uri(settings.bucket("curated"), *([table] if table else []))


def bookmarks_location(settings: Settings) -> str:
    """The Glue-style job bookmarks."""
    return s3_uri(settings.bucket("artifacts"), ETL_BOOKMARKS_PREFIX)


def features_location(
    settings: Settings, obs_date: date | str | None = None, portfolio: str | None = None
) -> str:
    """A portfolio's feature table, or its partition for one observation date."""
    base = s3_uri(settings.bucket("features"), FEATURES_PREFIX, _portfolio(settings, portfolio))
    return base if obs_date is None else f"{base}/{OBS_DATE}={_iso(obs_date)}"


def scores_location(
    settings: Settings, score_date: date | str | None = None, portfolio: str | None = None
) -> str:
    """A portfolio's scores table, or its partition for one score date."""
    base = s3_uri(settings.bucket("scores"), SCORES_PREFIX, _portfolio(settings, portfolio))
    return base if score_date is None else f"{base}/{SCORE_DATE}={_iso(score_date)}"


def replaced_scores_location(
    settings: Settings,
    score_date: date | str | None = None,
    replaced_at: str | None = None,
    portfolio: str | None = None,
) -> str:
    """A portfolio's replaced scoring runs, those of one score date, or one run of it."""
    base = s3_uri(
        settings.bucket("scores"), REPLACED_SCORES_PREFIX, _portfolio(settings, portfolio)
    )
    if score_date is None:
        return base
    day = f"{base}/{SCORE_DATE}={_iso(score_date)}"
    return day if replaced_at is None else f"{day}/{REPLACED_AT}={replaced_at}"


def replaced_at_stamp(moment: datetime) -> str:
    """A replaced run's partition value: its UTC time to the microsecond, sortable as text
    (``20261205T023000123456Z``)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def monitoring_location(
    settings: Settings, score_date: date | str | None = None, portfolio: str | None = None
) -> str:
    """A portfolio's PSI reports, or the report of one score date."""
    base = s3_uri(settings.bucket("scores"), MONITORING_PREFIX, _portfolio(settings, portfolio))
    if score_date is None:
        return base
    return f"{base}/{SCORE_DATE}={_iso(score_date)}/psi.json"


def oracle_key(portfolio: str) -> str:
    """The key (artifacts bucket) of a synthetic portfolio's true PDs."""
    return f"{ORACLE_PREFIX}/{portfolio}/{ORACLE_FILE}"


def risk_tables_location(settings: Settings, portfolio: str | None = None) -> str:
    """Where a portfolio's risk tables live: ``<this>/<name>/as_of=YYYY-MM-DD/``."""
    return s3_uri(settings.bucket("features"), RISK_TABLES_PREFIX, _portfolio(settings, portfolio))


def risk_table_location(
    settings: Settings, name: str, as_of: date | str | None = None, portfolio: str | None = None
) -> str:
    """A portfolio's risk table (:data:`RISK_TABLES`), or its snapshot of one month."""
    risk_table(name, _portfolio(settings, portfolio))  # a known name
    base = f"{risk_tables_location(settings, portfolio)}/{name}"
    return base if as_of is None else f"{base}/{AS_OF}={_iso(as_of)}"


def oracle_location(settings: Settings, portfolio: str | None = None) -> str:
    """A synthetic portfolio's true PDs, beside the stream and never in it."""
    return s3_uri(settings.bucket("artifacts"), oracle_key(_portfolio(settings, portfolio)))


def pipeline_run_location(settings: Settings, run_id: str, *parts: str) -> str:
    """A pipeline run's notes (failures, summary) in the artifacts bucket."""
    return s3_uri(settings.bucket("artifacts"), PIPELINE_RUNS_PREFIX, run_id, *parts)


def mlflow_artifacts_location(settings: Settings) -> str:
    """MLflow's artifact store."""
    return s3_uri(settings.bucket("artifacts"), MLFLOW_ARTIFACTS_PREFIX)


def experiment_name(settings: Settings, portfolio: str | None = None) -> str:
    """A portfolio's MLflow experiment (its training executions)."""
    return settings.named(_portfolio(settings, portfolio), "training")


def replaced_scores_table(portfolio: str) -> str:
    """A portfolio's replaced scoring runs as a SQL view, e.g. ``scores_replaced_synthetic``."""
    return f"{REPLACED_SCORES_TABLE}_{_sql_name(portfolio)}"


def features_table(portfolio: str) -> str:
    """A portfolio's Glue feature table, e.g. ``features_synthetic``."""
    return f"{FEATURES_TABLE}_{_sql_name(portfolio)}"


def risk_table(name: str, portfolio: str) -> str:
    """A portfolio's risk table in the catalog, e.g. ``vintage_synthetic``."""
    if name not in RISK_TABLES:
        raise ValueError(f"unknown risk table {name!r}; expected one of {', '.join(RISK_TABLES)}")
    return f"{name}_{_sql_name(portfolio)}"


def scores_table(portfolio: str) -> str:
    """A portfolio's Glue scores table (and SQL view), e.g. ``scores_synthetic``."""
    return f"{SCORES_TABLE}_{_sql_name(portfolio)}"


def model_name(settings: Settings, portfolio: str | None = None) -> str:
    """A portfolio's registered model (its versions and its champion)."""
    return settings.for_portfolio(_portfolio(settings, portfolio)).registered_model_name


def online_table(settings: Settings, portfolio: str | None = None) -> str:
    """A portfolio's online feature table (DynamoDB), keyed by account_id."""
    return settings.for_portfolio(_portfolio(settings, portfolio)).online_table


def _iso(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


# ---- the Step Functions orchestrator (pipeline/sfn.py) -----------------------------------------
def state_machine_name(settings: Settings) -> str:
    """The pipeline's state machine in Step Functions."""
    return settings.named("pipeline")


def step_queue_name(settings: Settings) -> str:
    """The SQS queue the state machine's Task states send their steps to (with a task token);
    the step worker (pipeline/sfn_worker.py) runs them and answers."""
    return settings.named("pipeline-steps")


STEP_ERROR_CONFIGURATION: Final = "riskstream.ConfigurationError"
"""The error a step fails with when its configuration is wrong: never retried."""


# ---- the model registry -----------------------------------------------------------------------
CHAMPION_ALIAS: Final = "champion"
CHALLENGER_ALIAS: Final = "challenger"
# model version tags (docs/CONTRACTS.md): training writes them, serving and the pipeline read them
TAG_MODEL_TYPE: Final = "model_type"  # the model kind (modelkinds registry)
TAG_PORTFOLIO: Final = "portfolio"  # the portfolio the version was trained on
TAG_THRESHOLD: Final = "threshold"  # the cost-optimal decision threshold
TAG_ROC_AUC: Final = "roc_auc"
TAG_KS: Final = "ks"
TAG_DECISION: Final = "decision"  # promote | keep (training.promotion)
TAG_DECISION_REASON: Final = "decision_reason"
TAG_PROMOTED_AT: Final = "promoted_at"
TAG_REPLACED_BY: Final = "replaced_by"
TAG_FEATURES: Final = "features"  # the model's input columns, comma-separated
TAG_FEATURES_URI: Final = "features_uri"  # the feature table it was trained on
TAG_FEATURES_DIGEST: Final = "features_digest"
TAG_FAIRNESS_ARTIFACT: Final = "fairness_artifact"
TAG_MODEL_CARD_ARTIFACT: Final = "model_card_artifact"
# the compiled scorer's single-row latency (probability and exact reasons, one thread), in ms:
# p99 over a fixed set of test rows, each row's median of several runs (training.serving_cost)
TAG_SERVING_P99_MS: Final = "serving_p99_ms"
TAG_SERVING_BUDGET_MS: Final = "serving_budget_ms"  # the budget it was promoted against
# model run tags: where the chosen configuration was fitted (training.spark_fit)
TAG_FIT_ENGINE: Final = "fit_engine"
FIT_ONE_MACHINE: Final = "one machine"  # this process, as every kind by default
FIT_SPARK: Final = "spark"  # the kind's spark_fit on the Spark cluster (RISKSTREAM_SPARK_MASTER)
SPARK_TRAINING_APP: Final = "riskstream-training"  # the Spark application that fits there
# artifacts in a model's run
BASELINE_ARTIFACT: Final = "baseline/baseline.json"  # PSI baseline
# a categorical input's baseline bin for rare categories, and at scoring time for unseen ones
BASELINE_OTHER_CATEGORY: Final = "(other)"
FEATURES_ARTIFACT: Final = "features.json"  # the feature document (columns, windows, dates)
# a model run's ROC-AUC per observation date, in time and out of time (the model card's table)
AUC_BY_OBS_DATE_ARTIFACT: Final = "evaluation/auc_by_obs_date.json"
FAIRNESS_ARTIFACT: Final = "fairness/fairness.json"
MODEL_CARD_ARTIFACT: Final = "model_card.md"
KIND_REPORT_DIR: Final = "kind"  # what a model kind publishes about its fit (modelkinds.KindReport)
KIND_CARD_ARTIFACT: Final = "kind/model_card_section.md"  # its model-card section

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
DEFAULT_SOURCE: Final = SOURCE_SYNTHETIC
DEFAULT_ACCOUNTS: Final = 2000
DEFAULT_MONTHS: Final = 24  # lookback + a 12-month window + 7 monthly observation dates
DEFAULT_SEED: Final = 7
DEFAULT_TRAIN_BUDGET_SECONDS: Final = 900  # an upper guard only: the trial count bounds it
DEFAULT_MAX_TRIALS: Final = 12
DEFAULT_MIN_KS: Final = 0.20
DEFAULT_MAX_ECE: Final = 0.05

PIPELINE_DEFAULTS: Final[dict[str, Any]] = {
    "source": DEFAULT_SOURCE,
    "portfolio": "",  # empty: the source's own (ingestion.tasks.portfolio_for)
    "accounts": DEFAULT_ACCOUNTS,
    "months": DEFAULT_MONTHS,
    "seed": DEFAULT_SEED,
    "csv_path": "",
    "csv_mapping": "",
    "taiwan_path": "",
    "train_budget_seconds": DEFAULT_TRAIN_BUDGET_SECONDS,
    "max_trials": DEFAULT_MAX_TRIALS,
    # promote even if the champion cannot be evaluated or is over the serving budget (recorded)
    "promote_override": False,
    "min_ks": DEFAULT_MIN_KS,
    "max_ece": DEFAULT_MAX_ECE,
    "reset_bookmarks": False,
}
"""The pipeline DAG's params and their defaults (the trigger form shows them)."""


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/part/part`` with single slashes."""
    path = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return f"s3://{bucket}/{path}" if path else f"s3://{bucket}"
