"""The scoring API and the analyst dashboard as managed background services (uvicorn, 127.0.0.1).

The child process rebuilds the same :class:`Settings` from the environment passed here
(:func:`settings_env`), so a service started from a test or the CLI talks to the same cloud,
registry and prefix as its parent.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

from infra.services import ManagedService, ServiceSpec
from riskstream.settings import REPO_ROOT, Settings


class ServiceConfigError(ValueError):
    """A service URL in the settings cannot be served locally; the message names it."""


def host_port(url: str, variable: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise ServiceConfigError(
            f"{variable}={url!r} must be an http URL with a port, e.g. http://127.0.0.1:8000"
        )
    host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
    return host, parsed.port


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables from which ``Settings.from_env`` rebuilds ``settings``."""
    env = {
        "RISKSTREAM_TARGET": settings.target,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "RISKSTREAM_CLOUD_HOST": settings.cloud_host,
        "RISKSTREAM_CLOUD_PORT": str(settings.cloud_port),
        "RISKSTREAM_PREFIX": settings.prefix,
        "RISKSTREAM_SHARDS": str(settings.shard_count),
        "RISKSTREAM_STATE_DIR": str(settings.state_dir),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "RISKSTREAM_API_URL": settings.api_url,
        "RISKSTREAM_DASHBOARD_URL": settings.dashboard_url,
    }
    if settings.endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.endpoint_url
    for service, url in settings.service_endpoints.items():
        env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        env["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key
    return env


def _uvicorn_spec(
    name: str,
    factory: str,
    url: str,
    variable: str,
    settings: Settings,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
) -> ServiceSpec:
    host, port = host_port(url, variable)
    return ServiceSpec(
        name=name,
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        host=host,
        port=port,
        health_path="/health",
        env={**settings_env(settings), **(extra_env or {})},
        cwd=REPO_ROOT,
        start_timeout=90,
    )


def api_workers() -> int:
    """One uvicorn worker per core (``RISKSTREAM_API_WORKERS`` overrides): scoring is CPU-bound
    and each worker is one Python process with its own GIL."""
    raw = os.environ.get("RISKSTREAM_API_WORKERS")
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ServiceConfigError(f"RISKSTREAM_API_WORKERS={raw!r} must be a positive integer")
        return int(raw)
    return max(os.cpu_count() or 1, 1)


def api_service(
    settings: Settings, ttl: float | None = None, workers: int | None = None
) -> ManagedService:
    """The scoring API on ``settings.api_url`` (default http://127.0.0.1:8000), one worker per
    core unless ``workers`` says otherwise."""
    extra = {"RISKSTREAM_CHAMPION_TTL": str(ttl)} if ttl is not None else None
    spec = _uvicorn_spec(
        "api",
        "serving.api:app_from_env",
        settings.api_url,
        "RISKSTREAM_API_URL",
        settings,
        extra,
        workers=workers or api_workers(),
    )
    return ManagedService(spec, settings.state_dir)


def dashboard_service(settings: Settings) -> ManagedService:
    """The analyst dashboard on ``settings.dashboard_url`` (default http://127.0.0.1:8050)."""
    spec = _uvicorn_spec(
        "dashboard",
        "serving.dashboard:app_from_env",
        settings.dashboard_url,
        "RISKSTREAM_DASHBOARD_URL",
        settings,
    )
    return ManagedService(spec, settings.state_dir)
