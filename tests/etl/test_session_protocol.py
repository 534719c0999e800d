"""The warm session's client and server share one protocol: every job it names has a body."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.session_jobs import SESSION_JOBS
from etl.session_protocol import JOB_NAMES, job_path, settings_fingerprint, token_file
from riskstream.settings import Settings

pytestmark = pytest.mark.unit


def test_every_job_the_protocol_names_has_one_body() -> None:
    assert sorted(SESSION_JOBS) == sorted(JOB_NAMES)


def test_job_path_and_token_file() -> None:
    settings = Settings(state_dir=Path("state"))
    assert job_path("compact") == "/jobs/compact"
    assert token_file(settings) == Path("state") / "run" / "spark-session.token"


def test_the_fingerprint_follows_the_settings() -> None:
    one = Settings(state_dir=Path("state"))
    assert settings_fingerprint(one) == settings_fingerprint(Settings(state_dir=Path("state")))
    assert settings_fingerprint(one) != settings_fingerprint(one.with_overrides(prefix="other"))
