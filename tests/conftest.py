"""Shared fixtures: a real moto server over HTTP on a free port, and isolated settings per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cloud import cloud_service
from infra.provision import provision
from infra.services import free_port
from riskstream.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def cloud_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a real moto server started for this test session on a free port."""
    state = tmp_path_factory.mktemp("cloud-state")
    port = free_port()
    settings = Settings.from_mapping(
        {
            "RISKSTREAM_TARGET": "embedded",
            "RISKSTREAM_CLOUD_PORT": str(port),
            "RISKSTREAM_STATE_DIR": str(state),
            "RISKSTREAM_PREFIX": "rstest",
        }
    )
    service = cloud_service(settings, ephemeral=True)
    service.up()
    try:
        yield settings
    finally:
        service.down()


@pytest.fixture
def isolated_settings(cloud_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a prefix of their own, so each test gets fresh buckets, stream and tables."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return cloud_settings.with_overrides(prefix=prefix, state_dir=tmp_path / "state")


@pytest.fixture
def provisioned(isolated_settings: Settings) -> Settings:
    """Isolated settings with every resource created on the session's moto server."""
    provision(isolated_settings)
    return isolated_settings


@pytest.fixture(scope="session")
def mlflow_settings(cloud_settings: Settings) -> Iterator[Settings]:
    """``cloud_settings`` with a real MLflow server for this session on a free port.

    Backend store: SQLite in a temporary state dir; artifacts: the session's moto S3
    (``s3://rstest-artifacts/mlflow``), proxied by the server. ``mlflow_tracking_uri`` points at it.
    """
    from training.service import mlflow_service

    provision(cloud_settings)  # the artifacts bucket must exist before the server writes to it
    settings = cloud_settings.with_overrides(
        mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
        state_dir=cloud_settings.state_dir / "mlflow-session",
    )
    service = mlflow_service(settings)
    service.up()
    try:
        yield settings
    finally:
        service.down()
