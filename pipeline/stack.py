"""Every background service riskstream manages, in start order (stopped in reverse).

One registry: the `<service> up|down|status`, `riskstream stop` and `riskstream status` commands
(:mod:`pipeline.services_cli`) and `riskstream run` all go through it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etl.session_process import session_service
from infra.airflow import airflow_service, password_file, start_airflow
from infra.cli import (
    add_cloud_up_options,
    register_localstack_commands,
    register_state_commands,
    start_cloud,
    state_line,
)
from infra.cloud import cloud_service
from infra.localstack import localstack_notes, localstack_service, start_localstack
from infra.services import ManagedService
from pipeline.sfn_worker import worker_service
from riskstream.settings import Settings
from serving.live_status import live_notes
from serving.processes import api_service, dashboard_service, live_service
from training.mlflow_process import artifacts_destination, mlflow_service


def _no_notes(settings: Settings) -> list[str]:
    return []


@dataclass(frozen=True)
class ServiceEntry:
    """One managed service: how to build it, how to start it, what to tell the user about it."""

    name: str
    what: str
    make: Callable[[Settings], ManagedService]
    # when starting is more than up(): gets the settings and the `up` command's arguments
    start: Callable[[Settings, argparse.Namespace], Any] | None = None
    notes: Callable[[Settings], list[str]] = field(default=_no_notes)
    # whether it is ours to run for these settings (the embedded cloud is not on AWS)
    applies: Callable[[Settings], bool] = field(default=lambda settings: True)
    up_options: Callable[[Any], None] | None = None  # adds options to `<name> up`
    more_commands: Callable[[Any], None] | None = None  # adds subcommands beside up/down/status

    def applies_to(self, settings: Settings) -> bool:
        return self.applies(settings)


SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry(
        "localstack",
        "LocalStack community in host mode (RISKSTREAM_TARGET=localstack; no Docker)",
        localstack_service,
        start=start_localstack,
        notes=localstack_notes,
        applies=lambda s: s.target == "localstack",
        up_options=lambda up: up.add_argument(
            "--ephemeral", action="store_true", help="keep the embedded catalog in memory only"
        ),
        more_commands=register_localstack_commands,
    ),
    ServiceEntry(
        "cloud",
        "the embedded local cloud (moto; on LocalStack, the Glue catalog)",
        cloud_service,
        start=start_cloud,
        notes=lambda s: [
            f"target {s.target}, endpoint {s.endpoint_url}, region {s.region}",
            state_line(s),
        ],
        applies=lambda s: s.runs_embedded_cloud,
        up_options=add_cloud_up_options,
        more_commands=register_state_commands,
    ),
    ServiceEntry(
        "spark",
        "the warm Spark session the ETL jobs share",
        session_service,
        notes=lambda s: [f"master {s.spark_master}; jobs fall back to their own session when down"],
    ),
    ServiceEntry(
        "mlflow",
        "the MLflow tracking server",
        mlflow_service,
        notes=lambda s: [f"artifacts in {artifacts_destination(s)}"],
    ),
    ServiceEntry(
        "airflow",
        "Airflow (standalone)",
        airflow_service,
        start=lambda settings, args: start_airflow(settings),
        notes=lambda s: [f"login admin, password in {password_file(s)}"],
    ),
    ServiceEntry(
        "sfn-worker",
        "the Step Functions step worker",
        worker_service,
        notes=lambda s: ["runs the steps of `riskstream run --engine stepfunctions`"],
    ),
    ServiceEntry(
        "api",
        "the real-time scoring API",
        api_service,
        notes=lambda s: ["OpenAPI docs at /docs"],
    ),
    ServiceEntry("dashboard", "the analyst dashboard", dashboard_service),
    ServiceEntry(
        "live",
        "the live scorer (every event rescored into the online table)",
        live_service,
        notes=live_notes,
    ),
)

SERVICES_BY_NAME = {entry.name: entry for entry in SERVICES}


def all_services(settings: Settings) -> list[ManagedService]:
    """Every service that applies to ``settings``, in start order."""
    return [entry.make(settings) for entry in SERVICES if entry.applies_to(settings)]
