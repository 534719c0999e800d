"""One settings object, built once at each entry point and passed down.

Nothing below an entry point reads the environment: call :meth:`Settings.from_env` in a CLI
command, a DAG task or a test fixture, then hand the value to the code that needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from riskstream.scorescale import DEFAULT_SCALE, ScoreScale

Target = Literal["embedded", "localstack", "aws"]
TARGETS: tuple[str, ...] = ("embedded", "localstack", "aws")

EMBEDDED_HOST = "127.0.0.1"
EMBEDDED_PORT = 4566
LOCALSTACK_ENDPOINT = "http://localhost:4566"
# On LocalStack, whose community edition refuses Glue (a paid service), the Glue catalog is kept
# by the embedded cloud, which then listens here (LocalStack has 4566) unless
# RISKSTREAM_CLOUD_PORT says otherwise, or AWS_ENDPOINT_URL_GLUE sends Glue elsewhere.
LOCALSTACK_CATALOG_PORT = 4567
# Not secrets: moto and LocalStack accept any credentials; these only satisfy the signer.
LOCAL_ACCESS_KEY = "test"
LOCAL_SECRET_KEY = "test"

BUCKET_ROLES: tuple[str, ...] = (
    "raw",
    "curated",
    "features",
    "scores",
    "quarantine",
    "artifacts",
)

REPO_ROOT = Path(__file__).resolve().parents[1]

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$")
# A portfolio's name becomes part of a model name, an S3 path, a DynamoDB table and a Glue table.
PORTFOLIO_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$")
DEFAULT_PORTFOLIO = "synthetic"


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and the value."""


def default_state_dir() -> Path:
    """Where pid files, logs and generated passwords live: outside the repository."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "riskstream"


def default_cache_dir() -> Path:
    """Where installs that outlive a run are kept (LocalStack's own environment): outside the
    repository, safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "riskstream"


DEFAULT_SPARK_TRAINING_MIN_ROWS = 5_000_000
"""Training rows at or above which a model kind that can fit on Spark (XGBoost) fits there, on
a cluster master (RISKSTREAM_SPARK_TRAINING_MIN_ROWS; docs/training.md, "Past one machine")."""
DEFAULT_SPARK_TRAINING_SEARCH_ROWS = 200_000
"""On that path the search runs on one machine, on a stratified sample of at most this many
training rows (RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS)."""

DEFAULT_TRAINING_SEARCH_ROWS = 100_000
"""Above this many training rows a model's hyperparameter search runs on one machine on a sample
of about this many (whole accounts, stratified); the out-of-fold fits and the refit see every row
(RISKSTREAM_TRAINING_SEARCH_ROWS; docs/training.md, "Large tables")."""

DEFAULT_SERVING_BUDGET_MS = 5.0
"""A challenger whose compiled scorer takes longer than this per row (p99, probability and
reasons, one thread) is not promoted (RISKSTREAM_SERVING_BUDGET_MS; 0 turns the check off)."""


@dataclass(frozen=True)
class Settings:
    """Everything that differs between the embedded cloud, LocalStack and real AWS."""

    target: Target = "embedded"
    region: str = "us-east-1"
    endpoint_url: str | None = f"http://{EMBEDDED_HOST}:{EMBEDDED_PORT}"
    service_endpoints: Mapping[str, str] = field(default_factory=dict)
    prefix: str = "creditrisk"
    shard_count: int = 2
    state_dir: Path = field(default_factory=default_state_dir)
    # LocalStack's own virtual environment and engines (infra/localstack.py): RISKSTREAM_CACHE_DIR
    cache_dir: Path = field(default_factory=default_cache_dir)
    cloud_host: str = EMBEDDED_HOST
    cloud_port: int = EMBEDDED_PORT
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    airflow_url: str = "http://127.0.0.1:8080"
    api_url: str = "http://127.0.0.1:8000"
    dashboard_url: str = "http://127.0.0.1:8050"
    # The warm Spark session the ETL tasks of a DAG run share (etl.session); 8998 is Livy's port.
    spark_session_url: str = "http://127.0.0.1:8998"
    # The live scorer's status endpoint (serving.live; loopback only).
    live_url: str = "http://127.0.0.1:8070"
    # A risk event goes out when an account's PD moves by more than this (or its tier/decision
    # changes): RISKSTREAM_RISK_EVENT_PD_DELTA.
    risk_event_pd_delta: float = 0.05
    spark_master: str = "local[2]"
    # XGBoost fits through xgboost.spark on a cluster master from this many training rows on; the
    # search then runs on a sample of at most ``spark_training_search_rows`` of them.
    spark_training_min_rows: int = DEFAULT_SPARK_TRAINING_MIN_ROWS
    spark_training_search_rows: int = DEFAULT_SPARK_TRAINING_SEARCH_ROWS
    # On one machine, the search's sample above this many training rows (the refit: all rows)
    training_search_rows: int = DEFAULT_TRAINING_SEARCH_ROWS
    # The Step Functions step worker's health endpoint (pipeline/sfn_worker.py)
    sfn_worker_url: str = "http://127.0.0.1:8790"
    spark_jars_dir: Path = field(default_factory=lambda: REPO_ROOT / ".jars")
    aws_access_key_id: str | None = LOCAL_ACCESS_KEY
    aws_secret_access_key: str | None = LOCAL_SECRET_KEY
    # Never model inputs, in addition to training.lawful.DEFAULT_PROTECTED
    # (RISKSTREAM_PROTECTED_ATTRIBUTES, comma-separated); age as an input only with
    # RISKSTREAM_ALLOW_AGE=1, where the law allows it (docs/training.md).
    protected_attributes: tuple[str, ...] = ()
    allow_age: bool = False
    api_workers: int = 0  # scoring API worker processes; 0: one per core
    # The promotion's serving budget: a challenger's compiled scorer must score one row (with its
    # exact reasons) within this p99, in ms (RISKSTREAM_SERVING_BUDGET_MS; 0: no budget).
    serving_budget_ms: float = DEFAULT_SERVING_BUDGET_MS
    # The portfolio this process works on (docs/CONTRACTS.md "Portfolios"): everything below
    # ingestion (features, model, scores, online table, dashboard, API) is per portfolio.
    portfolio: str = DEFAULT_PORTFOLIO
    # The score scale (riskstream.scorescale; docs/serving.md "Score scale"): base points at base
    # good:bad odds, points to double the odds, and the clipping range.
    score_base: float = DEFAULT_SCALE.base_score
    score_odds: float = DEFAULT_SCALE.base_odds
    score_pdo: float = DEFAULT_SCALE.pdo
    score_min: int = DEFAULT_SCALE.min_score
    score_max: int = DEFAULT_SCALE.max_score

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise SettingsError(
                f"RISKSTREAM_TARGET={self.target!r} is not one of {', '.join(TARGETS)}"
            )
        if not _PREFIX_RE.match(self.prefix):
            raise SettingsError(
                f"RISKSTREAM_PREFIX={self.prefix!r} must be 2-32 lowercase letters, digits or "
                "hyphens, starting and ending with a letter or digit "
                "(it becomes part of bucket names)"
            )
        if not self.serving_budget_ms >= 0:
            raise SettingsError(
                f"RISKSTREAM_SERVING_BUDGET_MS={self.serving_budget_ms} must be 0 (no budget) or "
                "a positive number of milliseconds"
            )
        if self.api_workers < 0:
            raise SettingsError(
                f"RISKSTREAM_API_WORKERS={self.api_workers} must be 0 (one per core) or more"
            )
        if not PORTFOLIO_RE.match(self.portfolio):
            raise SettingsError(
                f"portfolio {self.portfolio!r} must be 2-40 lowercase letters, digits or hyphens, "
                "starting and ending with a letter or digit (set RISKSTREAM_PORTFOLIO, "
                "--portfolio, or the mapping's 'portfolio' key)"
            )
        if not 0.0 < self.risk_event_pd_delta < 1.0:
            raise SettingsError(
                f"RISKSTREAM_RISK_EVENT_PD_DELTA={self.risk_event_pd_delta} must be between 0 and 1"
            )
        if self.spark_training_min_rows < 1:
            raise SettingsError(
                f"RISKSTREAM_SPARK_TRAINING_MIN_ROWS={self.spark_training_min_rows} must be 1 or "
                "more (training rows from which XGBoost fits on the Spark cluster)"
            )
        if self.spark_training_search_rows < 100:
            raise SettingsError(
                f"RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS={self.spark_training_search_rows} must be "
                "100 or more (the search's sample of the training rows)"
            )
        if self.training_search_rows < 100:
            raise SettingsError(
                f"RISKSTREAM_TRAINING_SEARCH_ROWS={self.training_search_rows} must be 100 or "
                "more (above that many training rows the search runs on a sample of that size)"
            )
        if not 1 <= self.shard_count <= 64:
            raise SettingsError(f"RISKSTREAM_SHARDS={self.shard_count} must be between 1 and 64")
        try:
            self.score_scale  # noqa: B018 - validates the five values together
        except ValueError as exc:
            raise SettingsError(
                f"score scale (RISKSTREAM_SCORE_BASE={self.score_base}, "
                f"RISKSTREAM_SCORE_ODDS={self.score_odds}, RISKSTREAM_SCORE_PDO={self.score_pdo}, "
                f"RISKSTREAM_SCORE_MIN={self.score_min}, RISKSTREAM_SCORE_MAX={self.score_max}): "
                f"{exc}"
            ) from None

    @property
    def score_scale(self) -> ScoreScale:
        """How a probability of default becomes a score (serving, the scorecard's points)."""
        return ScoreScale(
            self.score_base, self.score_odds, self.score_pdo, self.score_min, self.score_max
        )

    # ---- names -----------------------------------------------------------------------------
    def named(self, *parts: str) -> str:
        """A resource's name: the prefix and ``parts``, joined by dashes (``<prefix>-events``),
        so that several environments can share one account."""
        return "-".join((self.prefix, *parts))

    def bucket(self, role: str) -> str:
        """The bucket for one role (raw, curated, features, scores, quarantine, artifacts)."""
        if role not in BUCKET_ROLES:
            raise KeyError(f"unknown bucket role {role!r}; expected one of {BUCKET_ROLES}")
        return self.named(role)

    @property
    def buckets(self) -> dict[str, str]:
        return {role: self.bucket(role) for role in BUCKET_ROLES}

    @property
    def stream_name(self) -> str:
        return self.named("events")

    @property
    def risk_stream_name(self) -> str:
        """The live scorer's output: one versioned risk event per material change."""
        return self.named("risk-events")

    @property
    def checkpoint_table(self) -> str:
        return self.named("checkpoints")

    @property
    def online_table(self) -> str:
        """This portfolio's accounts' latest features, keyed by account_id (serving.online)."""
        return self.named(self.portfolio, "online")

    @property
    def glue_database(self) -> str:
        # Glue/Athena database names: lowercase letters, digits and underscores.
        return self.prefix.replace("-", "_")

    @property
    def registered_model_name(self) -> str:
        """This portfolio's registered model: its versions and its champion."""
        return self.named(self.portfolio, "risk")

    def for_portfolio(self, portfolio: str | None) -> Settings:
        """These settings scoped to ``portfolio`` (unchanged when it is empty or None)."""
        if not portfolio or portfolio == self.portfolio:
            return self
        return replace(self, portfolio=portfolio)

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint for one AWS service: a per-service override, else the common one."""
        return self.service_endpoints.get(service, self.endpoint_url)

    @property
    def embedded_url(self) -> str:
        """Where the embedded cloud listens (the cloud itself, or LocalStack's Glue catalog)."""
        return f"http://{self.cloud_host}:{self.cloud_port}"

    @property
    def catalog_in_embedded_cloud(self) -> bool:
        """On LocalStack, Glue (paid there) goes to the embedded cloud unless
        AWS_ENDPOINT_URL_GLUE sends it elsewhere (LocalStack Pro, for one)."""
        return self.target == "localstack" and "glue" not in self.service_endpoints

    @property
    def runs_embedded_cloud(self) -> bool:
        """Whether riskstream runs the embedded cloud: as the cloud, or as LocalStack's catalog."""
        return self.target == "embedded" or self.catalog_in_embedded_cloud

    @property
    def is_local(self) -> bool:
        return self.target != "aws"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        """A printable view, with the secret key masked."""
        out = asdict(self)
        out["state_dir"] = str(self.state_dir)
        out["cache_dir"] = str(self.cache_dir)
        out["spark_jars_dir"] = str(self.spark_jars_dir)
        if out.get("aws_secret_access_key"):
            out["aws_secret_access_key"] = "****"
        return out

    # ---- to and from the environment ----------------------------------------------------------
    def to_env(self) -> dict[str, str]:
        """Environment variables from which :meth:`from_env` rebuilds exactly these settings.

        The only way settings reach a child process (Airflow and its tasks, MLflow, the API,
        the dashboard): ``Settings.from_mapping(s.to_env()) == s`` for every field.
        """
        env = {
            "RISKSTREAM_TARGET": self.target,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "RISKSTREAM_CLOUD_HOST": self.cloud_host,
            "RISKSTREAM_CLOUD_PORT": str(self.cloud_port),
            "RISKSTREAM_PREFIX": self.prefix,
            "RISKSTREAM_SHARDS": str(self.shard_count),
            "RISKSTREAM_STATE_DIR": str(self.state_dir),
            "RISKSTREAM_CACHE_DIR": str(self.cache_dir),
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "RISKSTREAM_AIRFLOW_URL": self.airflow_url,
            "RISKSTREAM_API_URL": self.api_url,
            "RISKSTREAM_DASHBOARD_URL": self.dashboard_url,
            "RISKSTREAM_SPARK_SESSION_URL": self.spark_session_url,
            "RISKSTREAM_LIVE_URL": self.live_url,
            "RISKSTREAM_RISK_EVENT_PD_DELTA": repr(self.risk_event_pd_delta),
            "RISKSTREAM_SPARK_MASTER": self.spark_master,
            "RISKSTREAM_SFN_WORKER_URL": self.sfn_worker_url,
            "RISKSTREAM_SPARK_JARS_DIR": str(self.spark_jars_dir),
            "RISKSTREAM_PORTFOLIO": self.portfolio,
            "RISKSTREAM_SCORE_BASE": repr(self.score_base),
            "RISKSTREAM_SCORE_ODDS": repr(self.score_odds),
            "RISKSTREAM_SCORE_PDO": repr(self.score_pdo),
            "RISKSTREAM_SCORE_MIN": str(self.score_min),
            "RISKSTREAM_SCORE_MAX": str(self.score_max),
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        for service, url in self.service_endpoints.items():
            env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        if self.protected_attributes:
            env["RISKSTREAM_PROTECTED_ATTRIBUTES"] = ",".join(self.protected_attributes)
        if self.allow_age:
            env["RISKSTREAM_ALLOW_AGE"] = "1"
        if self.api_workers:
            env["RISKSTREAM_API_WORKERS"] = str(self.api_workers)
        if self.spark_training_min_rows != DEFAULT_SPARK_TRAINING_MIN_ROWS:
            env["RISKSTREAM_SPARK_TRAINING_MIN_ROWS"] = str(self.spark_training_min_rows)
        if self.spark_training_search_rows != DEFAULT_SPARK_TRAINING_SEARCH_ROWS:
            env["RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS"] = str(self.spark_training_search_rows)
        if self.training_search_rows != DEFAULT_TRAINING_SEARCH_ROWS:
            env["RISKSTREAM_TRAINING_SEARCH_ROWS"] = str(self.training_search_rows)
        if self.serving_budget_ms != DEFAULT_SERVING_BUDGET_MS:
            env["RISKSTREAM_SERVING_BUDGET_MS"] = str(self.serving_budget_ms)
        if self.aws_access_key_id is not None:
            env["AWS_ACCESS_KEY_ID"] = self.aws_access_key_id
        if self.aws_secret_access_key is not None:
            env["AWS_SECRET_ACCESS_KEY"] = self.aws_secret_access_key
        return env

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from environment variables (and an optional ``.env`` file).

        Real environment variables win over the ``.env`` file. See README "Configuration".
        """
        values: dict[str, str] = {}
        if dotenv is not None and Path(dotenv).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if env is None else env)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        target = env.get("RISKSTREAM_TARGET", "embedded").strip().lower()
        kwargs: dict[str, object] = {"target": target}
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            kwargs["region"] = region
        host = env.get("RISKSTREAM_CLOUD_HOST", EMBEDDED_HOST)
        port = _int(
            env,
            "RISKSTREAM_CLOUD_PORT",
            LOCALSTACK_CATALOG_PORT if target == "localstack" else EMBEDDED_PORT,
        )
        kwargs["cloud_host"] = host
        kwargs["cloud_port"] = port

        if target == "embedded":
            endpoint: str | None = env.get("AWS_ENDPOINT_URL") or f"http://{host}:{port}"
        elif target == "localstack":
            endpoint = env.get("AWS_ENDPOINT_URL") or env.get(
                "LOCALSTACK_ENDPOINT", LOCALSTACK_ENDPOINT
            )
        else:  # real AWS: no override unless the user sets the standard variable
            endpoint = env.get("AWS_ENDPOINT_URL") or None
        kwargs["endpoint_url"] = endpoint
        kwargs["service_endpoints"] = {
            key[len("AWS_ENDPOINT_URL_") :].lower(): value
            for key, value in env.items()
            if key.startswith("AWS_ENDPOINT_URL_") and value
        }
        if target == "aws":
            kwargs["aws_access_key_id"] = None  # boto3's own credential chain
            kwargs["aws_secret_access_key"] = None
        else:
            kwargs["aws_access_key_id"] = env.get("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY)
            kwargs["aws_secret_access_key"] = env.get("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY)

        simple = {
            "RISKSTREAM_PREFIX": "prefix",
            "MLFLOW_TRACKING_URI": "mlflow_tracking_uri",
            "RISKSTREAM_AIRFLOW_URL": "airflow_url",
            "RISKSTREAM_API_URL": "api_url",
            "RISKSTREAM_DASHBOARD_URL": "dashboard_url",
            "RISKSTREAM_SPARK_SESSION_URL": "spark_session_url",
            "RISKSTREAM_LIVE_URL": "live_url",
            "RISKSTREAM_SPARK_MASTER": "spark_master",
            "RISKSTREAM_SFN_WORKER_URL": "sfn_worker_url",
            "RISKSTREAM_PORTFOLIO": "portfolio",
        }
        for var, attr in simple.items():
            if env.get(var):
                kwargs[attr] = env[var]
        if env.get("RISKSTREAM_SPARK_JARS_DIR"):
            kwargs["spark_jars_dir"] = Path(env["RISKSTREAM_SPARK_JARS_DIR"]).expanduser()
        if env.get("RISKSTREAM_STATE_DIR"):
            kwargs["state_dir"] = Path(env["RISKSTREAM_STATE_DIR"]).expanduser()
        if env.get("RISKSTREAM_CACHE_DIR"):
            kwargs["cache_dir"] = Path(env["RISKSTREAM_CACHE_DIR"]).expanduser()
        if env.get("RISKSTREAM_SHARDS"):
            kwargs["shard_count"] = _int(env, "RISKSTREAM_SHARDS", 2)
        for var, attr in (
            ("RISKSTREAM_SCORE_BASE", "score_base"),
            ("RISKSTREAM_SCORE_ODDS", "score_odds"),
            ("RISKSTREAM_SCORE_PDO", "score_pdo"),
        ):
            if env.get(var):
                kwargs[attr] = _float(env, var)
        for var, attr in (
            ("RISKSTREAM_SCORE_MIN", "score_min"),
            ("RISKSTREAM_SCORE_MAX", "score_max"),
        ):
            if env.get(var):
                kwargs[attr] = _int(env, var, 0)
        if env.get("RISKSTREAM_API_WORKERS"):
            kwargs["api_workers"] = _int(env, "RISKSTREAM_API_WORKERS", 0)
        for var, attr, default in (
            (
                "RISKSTREAM_SPARK_TRAINING_MIN_ROWS",
                "spark_training_min_rows",
                DEFAULT_SPARK_TRAINING_MIN_ROWS,
            ),
            (
                "RISKSTREAM_SPARK_TRAINING_SEARCH_ROWS",
                "spark_training_search_rows",
                DEFAULT_SPARK_TRAINING_SEARCH_ROWS,
            ),
            (
                "RISKSTREAM_TRAINING_SEARCH_ROWS",
                "training_search_rows",
                DEFAULT_TRAINING_SEARCH_ROWS,
            ),
        ):
            if env.get(var):
                kwargs[attr] = _int(env, var, default)
        if env.get("RISKSTREAM_RISK_EVENT_PD_DELTA"):
            kwargs["risk_event_pd_delta"] = _float(env, "RISKSTREAM_RISK_EVENT_PD_DELTA")
        if env.get("RISKSTREAM_SERVING_BUDGET_MS"):
            kwargs["serving_budget_ms"] = _float(env, "RISKSTREAM_SERVING_BUDGET_MS")
        raw_protected = env.get("RISKSTREAM_PROTECTED_ATTRIBUTES", "")
        kwargs["protected_attributes"] = tuple(
            n.strip().lower() for n in raw_protected.split(",") if n.strip()
        )
        allow_age = env.get("RISKSTREAM_ALLOW_AGE", "").strip().lower()
        if allow_age not in ("", "0", "1", "true", "false"):
            raise SettingsError(f"RISKSTREAM_ALLOW_AGE={allow_age!r} must be 1 or 0")
        kwargs["allow_age"] = allow_age in ("1", "true")
        return cls(**kwargs)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str) -> float:
    raw = env[name]
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{name}={raw!r} must be a finite number")
    return value
