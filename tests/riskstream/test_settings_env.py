"""Settings.to_env is the one way settings reach a child process: it must round-trip every field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskstream.settings import TARGETS, Settings

pytestmark = pytest.mark.unit

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_url = st.builds(lambda host, port: f"http://{host}:{port}", _word, st.integers(1, 65535))
_path = st.builds(lambda parts: Path("/", *parts), st.lists(_word, min_size=1, max_size=3))

FIELDS = {
    "target": st.sampled_from(TARGETS),
    "region": st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"]),
    "endpoint_url": st.one_of(st.none(), _url),
    "service_endpoints": st.dictionaries(st.sampled_from(["s3", "kinesis", "glue"]), _url),
    "prefix": st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    "shard_count": st.integers(1, 64),
    "state_dir": _path,
    "cache_dir": _path,
    "cloud_host": st.sampled_from(["127.0.0.1", "localhost"]),
    "cloud_port": st.integers(1, 65535),
    "mlflow_tracking_uri": _url,
    "airflow_url": _url,
    "api_url": _url,
    "dashboard_url": _url,
    "spark_session_url": _url,
    "live_url": _url,
    "risk_event_pd_delta": st.floats(0.001, 0.999),
    "sfn_worker_url": _url,
    "spark_master": st.sampled_from(["local[2]", "local[*]", "spark://host:7077"]),
    "spark_training_min_rows": st.integers(1, 10**9),
    "spark_training_search_rows": st.integers(100, 10**7),
    "training_search_rows": st.integers(100, 10**7),
    "spark_jars_dir": _path,
    "aws_access_key_id": _word,
    "aws_secret_access_key": _word,
    "protected_attributes": st.lists(_word, unique=True, max_size=3).map(tuple),
    "allow_age": st.booleans(),
    "api_workers": st.integers(0, 16),
    "serving_budget_ms": st.floats(0, 1000, allow_nan=False),
    "portfolio": st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    "score_base": st.floats(100.0, 1000.0),
    "score_odds": st.floats(0.5, 200.0),
    "score_pdo": st.floats(1.0, 100.0),
    "score_min": st.integers(0, 400),
    "score_max": st.integers(500, 1000),
}


def test_every_settings_field_has_a_strategy() -> None:
    """A new field must be added here, so the round trip below covers it."""
    assert {f.name for f in dataclasses.fields(Settings)} == set(FIELDS)


@st.composite
def settings_values(draw: st.DrawFn) -> Settings:
    values = {name: draw(strategy) for name, strategy in FIELDS.items()}
    # What each target can express: the embedded cloud always has an endpoint; on AWS, boto3's
    # own credential chain applies (no keys in the settings).
    if values["target"] == "embedded" and values["endpoint_url"] is None:
        values["endpoint_url"] = f"http://{values['cloud_host']}:{values['cloud_port']}"
    if values["target"] == "aws":
        values["aws_access_key_id"] = values["aws_secret_access_key"] = None
    if values["target"] == "localstack" and values["endpoint_url"] is None:
        values["endpoint_url"] = "http://localhost:4566"
    return Settings(**values)


@given(settings_values())
def test_from_env_of_to_env_is_the_same_settings(settings: Settings) -> None:
    assert Settings.from_mapping(settings.to_env()) == settings


def test_a_value_only_in_dotenv_reaches_the_child_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RISKSTREAM_PREFIX=fromdotenv\nRISKSTREAM_SHARDS=5\n")
    settings = Settings.from_env(env={}, dotenv=dotenv)
    child = Settings.from_env(env=settings.to_env(), dotenv=None)
    assert (child.prefix, child.shard_count) == ("fromdotenv", 5)
