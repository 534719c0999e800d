"""The MLflow tracking server as a managed background service.

Backend store: SQLite under the state directory. Artifacts: the local cloud's S3
(``s3://{prefix}-artifacts/mlflow``), served through the tracking server (proxied artifact access),
so clients only need the tracking URI, never S3 credentials.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

from infra.services import ManagedService, ServiceSpec
from riskstream import names
from riskstream.settings import Settings


class MlflowConfigError(ValueError):
    """The MLflow tracking URI cannot be served locally; the message names the value."""


def tracking_host_port(settings: Settings) -> tuple[str, int]:
    """Host and port of ``settings.mlflow_tracking_uri`` (it must be an http URL)."""
    parsed = urlparse(settings.mlflow_tracking_uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MlflowConfigError(
            f"MLFLOW_TRACKING_URI={settings.mlflow_tracking_uri!r} is not an http URL; "
            "set it to e.g. http://127.0.0.1:5000"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.hostname, port


def artifacts_destination(settings: Settings) -> str:
    """Where the server stores run artifacts: the artifacts bucket of the configured cloud."""
    return names.mlflow_artifacts_location(settings)


def mlflow_state_dir(settings: Settings) -> Path:
    return settings.state_dir / "mlflow"


def mlflow_spec(settings: Settings) -> ServiceSpec:
    """``mlflow server`` on the host/port of the tracking URI, one worker (2-core machines)."""
    host, port = tracking_host_port(settings)
    if host == "localhost":
        host = "127.0.0.1"
    state = mlflow_state_dir(settings)
    state.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {
        **settings.to_env(),
        # The server's own uploads to S3 must not wait long on a local, single-node store.
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
        # MLflow 3's job runner (GenAI evaluation jobs: 8 extra processes) is not used here.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    endpoint = settings.endpoint_for("s3")
    if endpoint:
        env["MLFLOW_S3_ENDPOINT_URL"] = endpoint
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    argv = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_destination(settings),
    ]
    return ServiceSpec(
        name="mlflow",
        argv=argv,
        host=host,
        port=port,
        health_path="/health",
        health_check=lambda body: b"ok" in body.lower(),
        env=env,
        cwd=state,
        start_timeout=120,
    )


def mlflow_service(settings: Settings) -> ManagedService:
    """The MLflow server for ``settings`` (pid file and log under the state directory)."""
    return ManagedService(mlflow_spec(settings), settings.state_dir)
