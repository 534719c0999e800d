"""Service specs: the child process rebuilds the parent's settings; URLs are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstream.settings import Settings, SettingsError
from serving.processes import (
    ServiceConfigError,
    api_service,
    dashboard_service,
    host_port,
)

pytestmark = pytest.mark.unit


def test_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        {
            "RISKSTREAM_CLOUD_PORT": "4999",
            "RISKSTREAM_PREFIX": "abc-1",
            "RISKSTREAM_STATE_DIR": str(tmp_path),
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5999",
            "RISKSTREAM_API_URL": "http://127.0.0.1:8111",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4998",
        }
    )
    assert Settings.from_mapping(settings.to_env()) == settings


def test_specs_use_the_configured_ports(tmp_path: Path) -> None:
    settings = Settings(
        api_url="http://localhost:8123", dashboard_url="http://127.0.0.1:8124", state_dir=tmp_path
    )
    api = api_service(settings, ttl=2.0).spec
    assert (api.host, api.port, api.health_path) == ("127.0.0.1", 8123, "/health")
    assert "serving.api:app_from_env" in api.argv
    assert api.env["RISKSTREAM_CHAMPION_TTL"] == "2.0"
    dash = dashboard_service(settings).spec
    assert (dash.host, dash.port) == ("127.0.0.1", 8124)
    assert "serving.dashboard:app_from_env" in dash.argv


def test_bad_url_names_the_variable() -> None:
    with pytest.raises(ServiceConfigError, match="RISKSTREAM_API_URL='ftp://x'"):
        host_port("ftp://x", "RISKSTREAM_API_URL")


def test_api_workers_follow_the_cores(tmp_path: Path) -> None:
    import os

    settings = Settings(api_url="http://127.0.0.1:8123", state_dir=tmp_path)
    argv = api_service(settings).spec.argv
    assert argv[argv.index("--workers") + 1] == str(os.cpu_count() or 1)
    argv = api_service(
        Settings.from_mapping({**settings.to_env(), "RISKSTREAM_API_WORKERS": "3"})
    ).spec.argv
    assert argv[argv.index("--workers") + 1] == "3"
    dash = dashboard_service(settings).spec.argv
    assert dash[dash.index("--workers") + 1] == "1"
    with pytest.raises(SettingsError, match="RISKSTREAM_API_WORKERS='many'"):
        Settings.from_mapping({"RISKSTREAM_API_WORKERS": "many"})
