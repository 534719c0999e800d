"""`riskstream sfn deploy|history`: the pipeline's state machine in the cloud's Step Functions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from riskstream.commands import CommandError, add_group
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "sfn", "the pipeline's state machine in Step Functions")
    deploy = group.add_parser("deploy", help="create or update the state machine from the ASL")
    deploy.set_defaults(func=deploy_cmd)
    history = group.add_parser(
        "history", help="an execution's states (default: the latest execution), from its history"
    )
    history.add_argument("execution", nargs="?", default=None, help="execution name or ARN")
    history.add_argument("--events", action="store_true", help="every history event, as JSON")
    history.set_defaults(func=history_cmd)


def deploy_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline import sfn

    sfn.enable_execution(settings)
    print(sfn.deploy(settings))
    return 0


def history_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline import sfn

    execution = _execution_arn(settings, args.execution)
    described = sfn.describe(settings, execution)
    events = sfn.history(settings, execution)
    if args.events:
        print(json.dumps(events, indent=2, default=str))
        return 0
    print(f"{described['name']}  {described['status']}  started {described['startDate']}")
    for run in sfn.state_runs(events).values():
        took = f"{run.seconds:7.1f}s" if run.seconds is not None else "      -"
        tries = f"  ({run.attempts} attempts)" if run.attempts > 1 else ""
        print(f"  {run.name:<24} {run.type:<9} {run.status:<8} {took}{tries}")
        for error in run.errors:
            print(f"      {error[:200]}")
    if described.get("error"):
        print(f"  ended with {described['error']}: {described.get('cause') or ''}")
    return 0


def _execution_arn(settings: Settings, name: str | None) -> str:
    from pipeline import sfn

    if name and name.startswith("arn:"):
        return name
    machine = sfn.machine_arn(settings)
    if machine is None:
        raise CommandError(
            "the pipeline's state machine is not deployed; run "
            "`riskstream run --engine stepfunctions` (or `riskstream sfn deploy`)"
        )
    if name is None:
        latest = sfn.latest_execution(settings)
        if latest is None:
            raise CommandError("the state machine has no execution yet")
        return str(latest["executionArn"])
    prefix, _, machine_name = machine.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine_name}:{name}"


def status_line(settings: Settings) -> str | None:
    """The latest execution in one line for `riskstream status` (None when there is none)."""
    from pipeline import sfn

    try:
        latest = sfn.latest_execution(settings)
    except Exception:  # the status of the services is what counts; this is a note
        return None
    if latest is None:
        return None
    return (
        f"step functions: latest execution {latest['name']} {latest['status']} "
        "(`riskstream sfn history` for its states)"
    )
