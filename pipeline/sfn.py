"""Step Functions as the pipeline's second orchestrator: deploy, start, follow, read the history.

The ASL (pipeline/state_machine.asl.json) is deployed with every Task turned into an
``sqs:sendMessage.waitForTaskToken`` call (:func:`pipeline.asl.callback_definition`); the step
worker (:mod:`pipeline.sfn_worker`) runs each step through the registry the Airflow DAG uses and
answers. Retry, Catch, Choice and Parallel are the engine's. Why callbacks and not Activities:
docs/adr/0008-step-functions-worker.md.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.asl import ASL_PATH, callback_definition, load_definition, task_id_for
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
SKIPPED = "skipped"  # a step's answer that says it had nothing to do (StepSkipped)


class SfnError(RuntimeError):
    """The state machine could not be deployed or run; the message says what to do."""


def enable_execution(settings: Settings) -> None:
    """Tell a moto server to execute state machines (``POST /moto-api/config``); the embedded
    cloud does from its start (infra/moto_sfn.py), LocalStack and AWS always do."""
    if settings.target != "embedded" or not settings.endpoint_url:
        return
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
    request = urllib.request.Request(
        f"{settings.endpoint_url}/moto-api/config",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def role_arn(settings: Settings) -> str:
    """The role the state machine runs as (moto and LocalStack accept any; on AWS, create one
    that may send to the step queue)."""
    account = make_client(settings, "sts").get_caller_identity()["Account"]
    return f"arn:aws:iam::{account}:role/{names.state_machine_name(settings)}"


def rendered_definition(settings: Settings, asl_path: Path = ASL_PATH) -> dict[str, Any]:
    """The ASL at ``asl_path`` as this stack's Step Functions runs it (callbacks to the queue)."""
    queue = make_client(settings, "sqs").get_queue_url(QueueName=names.step_queue_name(settings))
    return callback_definition(
        load_definition(asl_path), queue["QueueUrl"], names.STEP_ERROR_CONFIGURATION
    )


def deploy(settings: Settings, asl_path: Path = ASL_PATH, name: str | None = None) -> str:
    """Create the state machine, or update it to the current ASL; its ARN."""
    sfn = make_client(settings, "stepfunctions")
    name = name or names.state_machine_name(settings)
    definition = json.dumps(rendered_definition(settings, asl_path))
    for machine in _state_machines(sfn):
        if machine["name"] == name:
            sfn.update_state_machine(
                stateMachineArn=machine["stateMachineArn"], definition=definition
            )
            return str(machine["stateMachineArn"])
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=role_arn(settings), type="STANDARD"
    )
    return str(created["stateMachineArn"])


def _state_machines(sfn: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        found += page.get("stateMachines", [])
    return found


def machine_arn(settings: Settings) -> str | None:
    """The pipeline's state machine, when it has been deployed."""
    sfn = make_client(settings, "stepfunctions")
    name = names.state_machine_name(settings)
    return next((m["stateMachineArn"] for m in _state_machines(sfn) if m["name"] == name), None)


def execution_input(params: dict[str, Any], run_date: str | None = None) -> dict[str, Any]:
    """An execution's input: the run's params (the DAG's params), its date, no results yet."""
    from pipeline.steps import default_params

    day = run_date or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return {"params": {**default_params(), **params}, "run_date": day, "results": {}}


def start(settings: Settings, arn: str, params: dict[str, Any], run_date: str | None = None) -> str:
    """Start one execution (a unique name, as Step Functions needs); its ARN."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    started = make_client(settings, "stepfunctions").start_execution(
        stateMachineArn=arn,
        name=f"run-{stamp}-{uuid.uuid4().hex[:6]}",
        input=json.dumps(execution_input(params, run_date)),
    )
    return str(started["executionArn"])


def history(settings: Settings, execution: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first (GetExecutionHistory, all pages)."""
    sfn = make_client(settings, "stepfunctions")
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution):
        events += page.get("events", [])
    return events


@dataclass
class StateRun:
    """What one state of an execution did, read from its history."""

    name: str
    type: str
    status: str = "running"  # success | failed | skipped | running
    attempts: int = 0
    entered: datetime.datetime | None = None
    exited: datetime.datetime | None = None
    result: Any = None
    errors: list[str] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return task_id_for(self.name)

    @property
    def seconds(self) -> float | None:
        if self.entered is None or self.exited is None:
            return None
        return (self.exited - self.entered).total_seconds()


def state_runs(events: list[dict[str, Any]]) -> dict[str, StateRun]:
    """Each state an execution entered, in the order it entered them: its attempts, outcome,
    result (the step's answer) and errors."""
    by_id = {e["id"]: e for e in events}
    runs: dict[str, StateRun] = {}

    def owner(event: dict[str, Any]) -> StateRun | None:
        seen = 0
        while event is not None and seen < len(by_id):
            details = event.get("stateEnteredEventDetails")
            if details is not None:
                return runs.get(details["name"])
            event = by_id.get(event.get("previousEventId"))  # type: ignore[assignment]
            seen += 1
        return None

    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            runs[name] = StateRun(
                name, kind.removesuffix("StateEntered"), entered=event["timestamp"]
            )
            continue
        if kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            run = runs.get(name)
            if run is not None:
                run.exited = event["timestamp"]
                if run.status == "running":
                    run.status = "success"
            continue
        run = owner(event)
        if run is None:
            continue
        if kind == "TaskScheduled":
            run.attempts += 1
        elif kind in ("TaskFailed", "TaskTimedOut"):
            details = event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails")
            details = details or {}
            run.errors.append(f"{details.get('error', kind)}: {details.get('cause') or ''}".strip())
            run.status = "failed"
        elif kind == "TaskSucceeded":
            output = json.loads(event["taskSucceededEventDetails"].get("output") or "null")
            run.result = output
            skipped = isinstance(output, dict) and output.get(SKIPPED) is True
            run.status = SKIPPED if skipped else "success"
    return runs


@dataclass(frozen=True)
class Outcome:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    error: str | None
    cause: str | None
    runs: dict[str, StateRun]


def describe(settings: Settings, execution: str) -> dict[str, Any]:
    answer: dict[str, Any] = make_client(settings, "stepfunctions").describe_execution(
        executionArn=execution
    )
    return answer


def wait(
    settings: Settings,
    execution: str,
    timeout: float,
    on_change: Any = None,
    poll: float = 1.0,
    on_poll: Any = None,
) -> Outcome:
    """Follow ``execution`` until it ends (``on_change(run)`` for each state that changes,
    ``on_poll()`` after each look); SfnError when it runs longer than ``timeout`` seconds (it
    goes on in the engine)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple[str, int]] = {}
    while True:
        status = describe(settings, execution)
        runs = state_runs(history(settings, execution))
        for name, run in runs.items():
            if seen.get(name) != (run.status, run.attempts):
                seen[name] = (run.status, run.attempts)
                if on_change is not None:
                    on_change(run)
        if status["status"] in TERMINAL:
            return Outcome(status["status"], status.get("error"), status.get("cause"), runs)
        if on_poll is not None:
            on_poll()
        if time.monotonic() > deadline:
            raise SfnError(
                f"the execution {execution} did not finish within {timeout:.0f}s; it goes on in "
                "Step Functions (`riskstream sfn history` follows it)"
            )
        time.sleep(poll)


def latest_execution(settings: Settings) -> dict[str, Any] | None:
    """The newest execution of the pipeline's state machine, if any."""
    arn = machine_arn(settings)
    if arn is None:
        return None
    answer = make_client(settings, "stepfunctions").list_executions(stateMachineArn=arn)
    executions = sorted(answer.get("executions", []), key=lambda e: e["startDate"])
    return executions[-1] if executions else None
