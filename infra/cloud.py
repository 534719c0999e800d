"""The embedded local cloud: moto in server mode, managed as a background service."""

from __future__ import annotations

import sys

from infra.services import ManagedService, ServiceSpec
from riskstream.settings import Settings


def cloud_spec(settings: Settings) -> ServiceSpec:
    """moto's server on the configured host and port (127.0.0.1:4566 by default)."""
    return ServiceSpec(
        name="cloud",
        argv=[
            sys.executable,
            "-m",
            "infra.moto_server",
            "-H",
            settings.cloud_host,
            "-p",
            str(settings.cloud_port),
        ],
        host=settings.cloud_host,
        port=settings.cloud_port,
        health_path="/moto-api/",
        health_check=lambda body: b"moto" in body.lower(),
        start_timeout=60,
    )


def cloud_service(settings: Settings) -> ManagedService:
    if settings.target != "embedded":
        raise ValueError(
            f"the embedded cloud is only for RISKSTREAM_TARGET=embedded (it is {settings.target!r})"
        )
    return ManagedService(cloud_spec(settings), settings.state_dir)
