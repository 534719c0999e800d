"""`riskstream run`: the main job end to end (what `make run` calls)."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from riskstream.commands import CommandError
from riskstream.settings import Settings

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="start the local cloud and services, provision, and run the pipeline end to end",
        description="What `make run` does after set-up.",
    )
    run.set_defaults(func=run_cmd)


def run_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from infra.cloud import cloud_service
    from infra.provision import provision
    from infra.services import ServiceError

    phases: list[tuple[str, float]] = []
    started = time.monotonic()
    if settings.target == "embedded":
        try:
            cloud_service(settings).up()
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
    phases.append(("cloud up", time.monotonic() - started))

    mark = time.monotonic()
    resources = provision(settings)
    created = sum(r.action == "created" for r in resources)
    phases.append(("provision", time.monotonic() - mark))
    print(f"provisioned: {created} created, {len(resources) - created} already existed")

    print("\nphase timings:")
    for name, seconds in phases:
        print(f"  {name:<12} {seconds:6.1f}s")
    print(f"\nlocal cloud: {settings.endpoint_url}  (stop everything with `make stop`)")
    return 0
