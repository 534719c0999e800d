"""What the warm Spark session's client and server agree on: where, which jobs, which headers.

The client (:mod:`etl.session`, used by :mod:`etl.tasks`) and the server
(:mod:`etl.session_server`) both import this module and not each other, so a change to the
protocol is one edit here. Pure: standard library and the settings only.

- ``GET`` :data:`HEALTH_PATH` answers the session's state;
- ``POST`` :func:`job_path` of one of :data:`JOB_NAMES`, with a JSON object of the job's keyword
  arguments and the headers :data:`TOKEN_HEADER` (the token in :func:`token_file`) and
  :data:`FINGERPRINT_HEADER` (:func:`settings_fingerprint`), answers a :class:`JobAnswer`
  (status 200) or a :class:`JobError` (any other status).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypedDict

from riskstream.settings import Settings

TOKEN_HEADER = "X-Riskstream-Token"
FINGERPRINT_HEADER = "X-Riskstream-Settings"

HEALTH_PATH = "/health"
JOBS_PATH = "/jobs/"

RAW_TO_CURATED = "raw_to_curated"
CURATED_TO_FEATURES = "curated_to_features"
COMPACT = "compact"
CURATED_TO_RISK_TABLES = "curated_to_risk_tables"
JOB_NAMES = (RAW_TO_CURATED, CURATED_TO_FEATURES, COMPACT, CURATED_TO_RISK_TABLES)
"""Every job the session runs (:data:`etl.session_jobs.SESSION_JOBS` has one body for each)."""

LogRecord = list[Any]
"""One log record a job wrote, as sent back: ``[levelno, logger name, message]``."""


class JobAnswer(TypedDict):
    """The body of a job's 200 answer."""

    report: dict[str, Any]  # the job's run report
    logs: list[LogRecord]
    session: dict[str, Any]  # ``app_id`` and ``job`` (its number on this session)


class JobError(TypedDict, total=False):
    """The body of any other answer: ``error`` always; the rest when the job itself raised."""

    error: str
    type: str
    traceback: str
    logs: list[LogRecord]


def job_path(job: str) -> str:
    """The URL path a job is posted to."""
    return f"{JOBS_PATH}{job}"


def token_file(settings: Settings) -> Path:
    """Where the server writes the token a client must send (mode 0600)."""
    return Path(settings.state_dir) / "run" / "spark-session.token"


def settings_fingerprint(settings: Settings) -> str:
    """Short digest of every setting a child process would see (Settings.to_env), but the
    portfolio: one session serves every portfolio, each job names its own (its ``portfolio``)."""
    env = settings.to_env()
    env.pop("RISKSTREAM_PORTFOLIO", None)
    text = json.dumps(env, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
