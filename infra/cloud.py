"""The embedded local cloud: moto in server mode, managed as a background service.

Durable by default: its state lives in ``<state_dir>/cloud`` (infra/durable.py) and survives a
stop or a crash. ``ephemeral=True`` keeps everything in memory (the test fixtures use it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from infra.services import ManagedService, ServiceSpec
from riskstream.settings import Settings


def cloud_state_dir(settings: Settings) -> Path:
    """Where the durable cloud keeps its snapshot and write-ahead log."""
    return settings.state_dir / "cloud"


def cloud_spec(settings: Settings, ephemeral: bool = False, fsync: bool = False) -> ServiceSpec:
    """moto's server on the configured host and port (127.0.0.1:4566 by default)."""
    argv = [
        sys.executable,
        "-m",
        "infra.moto_server",
        "-H",
        settings.cloud_host,
        "-p",
        str(settings.cloud_port),
    ]
    if not ephemeral:
        argv += ["--state", str(cloud_state_dir(settings))]
        if fsync:
            argv.append("--fsync")
    return ServiceSpec(
        name="cloud",
        argv=argv,
        host=settings.cloud_host,
        port=settings.cloud_port,
        health_path="/moto-api/",
        health_check=lambda body: b"moto" in body.lower(),
        start_timeout=120,  # a large state takes a while to restore
    )


def cloud_service(
    settings: Settings, ephemeral: bool = False, fsync: bool = False
) -> ManagedService:
    if not settings.runs_embedded_cloud:
        raise ValueError(
            "the embedded cloud is for RISKSTREAM_TARGET=embedded, and for LocalStack's Glue "
            f"catalog (RISKSTREAM_TARGET={settings.target!r}, Glue at "
            f"{settings.endpoint_for('glue')})"
        )
    return ManagedService(cloud_spec(settings, ephemeral, fsync), settings.state_dir)


def move_state_aside(settings: Settings) -> Path | None:
    """Move the cloud's saved state to ``cloud.aside-<time>`` (never delete it); return where."""
    directory = cloud_state_dir(settings)
    if not directory.exists() or not any(directory.iterdir()):
        return None
    target = directory.with_name(f"{directory.name}.aside-{time.strftime('%Y%m%d-%H%M%S')}")
    directory.rename(target)
    return target
