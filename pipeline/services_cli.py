"""`riskstream <service> up|down|status`, `riskstream stop` and `riskstream status`: one handler
over the service registry (:mod:`pipeline.stack`)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.stack import SERVICES, SERVICES_BY_NAME, ServiceEntry, all_services
from riskstream.commands import add_group, user_errors
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    for entry in SERVICES:
        group = add_group(subparsers, entry.name, f"start, inspect or stop {entry.what}")
        for action, text in (
            ("up", f"start {entry.what} and wait until it answers"),
            ("down", f"stop {entry.what} and every process it started"),
            ("status", f"say whether {entry.what} runs, and where"),
        ):
            command = group.add_parser(action, help=text)
            command.set_defaults(func=service_cmd, service=entry.name, action=action)
            if action == "up" and entry.up_options is not None:
                entry.up_options(command)
        if entry.more_commands is not None:
            entry.more_commands(group)
    stop = subparsers.add_parser("stop", help="stop every service riskstream started")
    stop.set_defaults(func=stop_all)
    status = subparsers.add_parser("status", help="list every service, its URL, pid and log")
    status.set_defaults(func=status_all)


def service_cmd(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``args.action`` (up, down or status) on the service named ``args.service``."""
    from infra.services import ServiceError

    entry: ServiceEntry = SERVICES_BY_NAME[args.service]
    if not entry.applies_to(settings):
        print(
            f"RISKSTREAM_TARGET={settings.target}: {entry.what} is not ours to manage; "
            f"using {settings.endpoint_url}"
        )
        return 0
    with user_errors(ServiceError, ValueError):  # ValueError: a URL in the settings is unusable
        service = entry.make(settings)
        if args.action == "up":
            if entry.start is not None:
                entry.start(settings, args)
            else:
                service.up()
            status = service.status()
            print(f"{entry.name} running at {status.url} (pid {status.pid}); log {status.log}")
            for note in entry.notes(settings):
                print(f"  {note}")
            return 0
        if args.action == "down":
            stopped = service.down()
            print(f"{entry.name} stopped" if stopped else f"{entry.name} was not running")
            return 0
    status = service.status()
    print(status.line())
    if status.state == "stale":
        print(f"  stale pid file (the process is gone); `riskstream {entry.name} up` cleans it")
    for note in entry.notes(settings):
        print(f"  {note}")
    return 0 if status.state == "running" else 3


def stop_all(args: argparse.Namespace, settings: Settings) -> int:
    for service in reversed(all_services(settings)):
        stopped = service.down()
        print(f"{service.spec.name:<10} {'stopped' if stopped else 'was not running'}")
    return 0


def status_all(args: argparse.Namespace, settings: Settings) -> int:
    """Every service's state; with MLflow up, also every registered version it cannot load."""
    from infra.cli import registry_status

    running = set()
    for service in all_services(settings):
        status = service.status()
        print(status.line())
        if status.state == "running":
            running.add(service.spec.name)
    if "cloud" in running or settings.target != "embedded":
        from pipeline.sfn_cli import status_line

        line = status_line(settings)
        if line:
            print(line)
    return registry_status(settings) if "mlflow" in running else 0
