"""docker-compose.yml cannot run here (no Docker engine), so check it structurally."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from riskstream.settings import Settings

pytestmark = pytest.mark.unit
COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in COMPOSE["services"].items():
        image = service.get("image")
        if image is None:
            assert "build" in service, name
            continue
        assert ":" in image, f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag not in ("latest", "stable", "main"), f"{name}: {image} is not pinned"
        assert any(ch.isdigit() for ch in tag), f"{name}: {image} tag is not a version"


def test_ports_bind_to_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in COMPOSE["services"].items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service["healthcheck"]["test"], name


def test_localstack_matches_the_embedded_defaults() -> None:
    defaults = Settings.from_mapping({})
    localstack = COMPOSE["services"]["localstack"]
    assert f"127.0.0.1:{defaults.cloud_port}:4566" in localstack["ports"]
    env = localstack["environment"]
    assert env["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    assert env["AWS_DEFAULT_REGION"] == defaults.region
    for service in ("s3", "kinesis", "dynamodb", "glue"):
        assert service in env["SERVICES"].split(",")


def test_no_secrets_in_the_file() -> None:
    text = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text().lower()
    for word in ("password: ", "secret_key: "):
        for line in text.splitlines():
            if word in line:
                value = line.split(word, 1)[1].strip()
                assert value.startswith("${") or value in ("test", "airflow", "mlflow"), line


def test_mlflow_and_airflow_match_the_embedded_ports() -> None:
    defaults = Settings.from_mapping({})
    mlflow_port = defaults.mlflow_tracking_uri.rsplit(":", 1)[1]
    airflow_port = defaults.airflow_url.rsplit(":", 1)[1]
    assert f"127.0.0.1:{mlflow_port}:5000" in COMPOSE["services"]["mlflow"]["ports"]
    assert f"127.0.0.1:{airflow_port}:8080" in COMPOSE["services"]["airflow"]["ports"]


def test_services_use_postgres_and_localstack() -> None:
    for name in ("mlflow", "airflow"):
        service = COMPOSE["services"][name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["localstack"]["condition"] == "service_healthy"
        assert service["environment"]["RISKSTREAM_TARGET"] == "localstack"
    assert "postgresql" in COMPOSE["services"]["mlflow"]["command"]
    assert (
        "postgresql"
        in COMPOSE["services"]["airflow"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )


def test_build_context_files_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    for service in COMPOSE["services"].values():
        if "build" in service:
            assert (root / service["build"]["dockerfile"]).is_file()
    assert (root / "infra" / "compose" / "postgres-init.sql").is_file()
