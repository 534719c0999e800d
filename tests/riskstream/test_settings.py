from __future__ import annotations

from pathlib import Path

import pytest

from riskstream.settings import BUCKET_ROLES, Settings, SettingsError

pytestmark = pytest.mark.unit


def test_defaults_point_at_the_embedded_cloud_on_loopback() -> None:
    settings = Settings.from_mapping({})
    assert settings.target == "embedded"
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.region == "us-east-1"
    assert settings.stream_name == "creditrisk-events"
    assert settings.checkpoint_table == "creditrisk-checkpoints"
    assert settings.glue_database == "creditrisk"
    assert settings.bucket("raw") == "creditrisk-raw"
    assert set(settings.buckets) == set(BUCKET_ROLES)
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.shard_count == 2


def test_overrides_from_environment() -> None:
    settings = Settings.from_mapping(
        {
            "RISKSTREAM_PREFIX": "team-a",
            "AWS_REGION": "eu-west-1",
            "RISKSTREAM_SHARDS": "4",
            "RISKSTREAM_CLOUD_PORT": "4999",
            "RISKSTREAM_STATE_DIR": "state/somewhere",
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5555",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
        }
    )
    assert settings.bucket("scores") == "team-a-scores"
    assert settings.glue_database == "team_a"
    assert settings.region == "eu-west-1"
    assert settings.shard_count == 4
    assert settings.endpoint_url == "http://127.0.0.1:4999"
    assert settings.state_dir == Path("state/somewhere")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5555"
    assert settings.endpoint_for("s3") == "http://127.0.0.1:9000"
    assert settings.endpoint_for("kinesis") == "http://127.0.0.1:4999"


def test_aws_target_has_no_endpoint_override_and_no_static_keys() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_TARGET": "aws"})
    assert settings.endpoint_url is None
    assert settings.aws_access_key_id is None
    assert not settings.is_local


def test_localstack_target_defaults_to_localstack_edge() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_TARGET": "localstack"})
    assert settings.endpoint_url == "http://localhost:4566"


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RISKSTREAM_PREFIX=fromfile\nRISKSTREAM_SHARDS=3\n")
    settings = Settings.from_env(env={"RISKSTREAM_SHARDS": "5"}, dotenv=dotenv)
    assert settings.prefix == "fromfile"
    assert settings.shard_count == 5


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"RISKSTREAM_TARGET": "azure"}, "RISKSTREAM_TARGET='azure'"),
        ({"RISKSTREAM_PREFIX": "Bad_Prefix"}, "RISKSTREAM_PREFIX='Bad_Prefix'"),
        ({"RISKSTREAM_SHARDS": "many"}, "RISKSTREAM_SHARDS='many'"),
        ({"RISKSTREAM_SHARDS": "0"}, "RISKSTREAM_SHARDS=0"),
        ({"RISKSTREAM_CLOUD_PORT": "x"}, "RISKSTREAM_CLOUD_PORT='x'"),
    ],
)
def test_bad_values_name_the_variable_and_value(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("[", r"\[")):
        Settings.from_mapping(env)


def test_describe_masks_the_secret() -> None:
    assert Settings.from_mapping({}).describe()["aws_secret_access_key"] == "****"


def test_unknown_bucket_role_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown bucket role 'gold'"):
        Settings.from_mapping({}).bucket("gold")


def test_the_score_scale_is_configuration_with_documented_defaults() -> None:
    from riskstream.scorescale import ScoreScale

    assert Settings.from_mapping({}).score_scale == ScoreScale(750.0, 50.0, 40.0, 300, 850)
    env = {
        "RISKSTREAM_SCORE_BASE": "600",
        "RISKSTREAM_SCORE_ODDS": "20.5",
        "RISKSTREAM_SCORE_PDO": "30",
        "RISKSTREAM_SCORE_MIN": "250",
        "RISKSTREAM_SCORE_MAX": "900",
    }
    settings = Settings.from_mapping(env)
    assert settings.score_scale == ScoreScale(600.0, 20.5, 30.0, 250, 900)
    assert Settings.from_mapping(settings.to_env()) == settings
    with pytest.raises(SettingsError, match=r"RISKSTREAM_SCORE_PDO='twenty' is not a number"):
        Settings.from_mapping({"RISKSTREAM_SCORE_PDO": "twenty"})
    with pytest.raises(
        SettingsError, match=r"RISKSTREAM_SCORE_PDO=-5.0.*pdo=-5.0 must be positive"
    ):
        Settings.from_mapping({"RISKSTREAM_SCORE_PDO": "-5"})
    with pytest.raises(SettingsError, match="min_score=900 must be below max_score=850"):
        Settings.from_mapping({"RISKSTREAM_SCORE_MIN": "900"})
