"""The pipeline's Amazon States Language definition, read into a small graph model (pure).

The ASL file (pipeline/state_machine.asl.json) and the registry of model kinds (modelkinds/) are
the single source of truth: a Parallel state whose one branch names ``{kind}`` is a template,
expanded once per registered kind (:func:`expand_kinds`), so a new kind gets its training branch
without an edit here. :mod:`pipeline.dag_builder` builds the Airflow DAG
(dags/credit_risk_pipeline.py) from :func:`load_workflow`, and the parity tests compare the two.
``python -m pipeline.asl`` prints the expanded definition, as Step Functions takes it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASL_PATH = Path(__file__).resolve().parent / "state_machine.asl.json"
_STATE_TYPES = {"Task", "Parallel", "Choice", "Succeed", "Fail", "Pass", "Wait", "Map"}


class AslError(ValueError):
    """The state machine definition is invalid; the message names the state."""


@dataclass(frozen=True)
class RetryPolicy:
    """ASL Retry, as Airflow understands it: retries, first delay, multiplier, cap."""

    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_attempts: int = 3
    max_delay_seconds: float | None = None


@dataclass(frozen=True)
class Step:
    """One executable state of the flattened workflow (a Task, Choice, Succeed or Fail)."""

    name: str
    kind: str  # "Task" | "Choice" | "Succeed" | "Fail"
    task_id: str
    step: str | None = None  # dotted path of the Python function a Task runs
    resource: str | None = None
    retry: RetryPolicy | None = None
    catch_to: str | None = None
    choice_variable: str | None = None
    choice_true: str | None = None
    choice_default: str | None = None
    comment: str = ""


@dataclass
class Workflow:
    """States flattened (Parallel branches inlined) plus their edges."""

    start: str
    steps: dict[str, Step] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    parallel_groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failure_handlers(self) -> set[str]:
        return {s.catch_to for s in self.steps.values() if s.catch_to}

    def upstream(self, name: str) -> set[str]:
        return {a for a, b in self.edges if b == name}


def task_id_for(state_name: str) -> str:
    """ASL state name -> Airflow task id: ``PromoteChallenger?`` -> ``promote_challenger``."""
    cleaned = re.sub(r"[^0-9A-Za-z]+", "_", state_name).strip("_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cleaned).lower()


KIND_NAME = "{kind}"  # in a template branch: the kind's name (``lr``)
KIND_STATE = "{KIND}"  # in a template branch: the name in capitals, for state names (``LR``)


def load_definition(path: Path = ASL_PATH) -> dict[str, Any]:
    """The definition at ``path``, its kind templates expanded (:func:`expand_kinds`)."""
    return expand_kinds(json.loads(Path(path).read_text()))


def expand_kinds(definition: dict[str, Any], kinds: Sequence[str] | None = None) -> dict[str, Any]:
    """``definition`` with each template branch (one naming ``{kind}``) of a Parallel state
    replaced by one branch per kind (default: the registered kinds, :func:`modelkinds.names`),
    in the registry's order. A definition without templates comes back unchanged."""
    import modelkinds

    names = modelkinds.names() if kinds is None else tuple(kinds)
    out = copy.deepcopy(definition)
    for state in out.get("States", {}).values():
        branches = state.get("Branches")
        if state.get("Type") != "Parallel" or not branches:
            continue
        expanded: list[dict[str, Any]] = []
        for branch in branches:
            text = json.dumps(branch)
            if KIND_NAME not in text and KIND_STATE not in text:
                expanded.append(expand_kinds(branch, names))
                continue
            for name in names:
                filled = text.replace(KIND_NAME, name).replace(KIND_STATE, name.upper())
                expanded.append(json.loads(filled))
        state["Branches"] = expanded
    return out


def load_workflow(path: Path = ASL_PATH) -> Workflow:
    definition = load_definition(path)
    validate(definition)
    return flatten(definition)


def validate(definition: dict[str, Any]) -> None:
    """Structural checks Step Functions would make, with messages naming the state."""
    _validate_machine(definition, "top level", seen=set())


def _validate_machine(machine: dict[str, Any], where: str, seen: set[str]) -> None:
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        raise AslError(f"{where}: States must be a non-empty object")
    if machine.get("StartAt") not in states:
        raise AslError(f"{where}: StartAt {machine.get('StartAt')!r} is not a state")
    for name, state in states.items():
        if name in seen:
            raise AslError(f"state name {name!r} is used twice")
        seen.add(name)
        kind = state.get("Type")
        if kind not in _STATE_TYPES:
            raise AslError(f"state {name!r}: unknown Type {kind!r}")
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        for target in filter(None, targets):
            if target not in states:
                raise AslError(f"state {name!r}: Next/Catch target {target!r} does not exist")
        if kind in ("Task", "Parallel", "Pass", "Wait", "Map") and not (
            state.get("Next") or state.get("End")
        ):
            raise AslError(f"state {name!r}: needs Next or End")
        if kind == "Task" and not state.get("Resource"):
            raise AslError(f"state {name!r}: Task needs a Resource")
        if kind == "Choice" and not state.get("Choices"):
            raise AslError(f"state {name!r}: Choice needs Choices")
        for retry in state.get("Retry", []):
            if retry.get("MaxAttempts", 3) < 0 or retry.get("BackoffRate", 2.0) < 1.0:
                raise AslError(f"state {name!r}: MaxAttempts >= 0 and BackoffRate >= 1.0")
        if kind == "Parallel":
            for i, branch in enumerate(state.get("Branches", [])):
                _validate_machine(branch, f"{name} branch {i}", seen)


def flatten(definition: dict[str, Any]) -> Workflow:
    workflow = Workflow(start=definition["StartAt"])
    _flatten_into(workflow, definition["States"], catch_inherited=None)
    by_task_id: dict[str, str] = {}
    for name, step in workflow.steps.items():
        if step.task_id in by_task_id:
            raise AslError(
                f"states {by_task_id[step.task_id]!r} and {name!r} both become Airflow task id "
                f"{step.task_id!r}; rename one"
            )
        by_task_id[step.task_id] = name
    return workflow


def _entries_of(states: dict[str, Any], name: str) -> list[str]:
    """Executable steps where control enters a state (a Parallel enters all its branches)."""
    state = states[name]
    if state["Type"] == "Parallel":
        return [b["StartAt"] for b in state["Branches"]]
    return [name]


def _exits_of(states: dict[str, Any], name: str) -> list[str]:
    """Executable steps that finish a state (a Parallel finishes with every branch's end)."""
    state = states[name]
    if state["Type"] != "Parallel":
        return [name]
    ends = []
    for branch in state["Branches"]:
        ends += [n for n, s in branch["States"].items() if s.get("End")]
    return ends


def _flatten_into(workflow: Workflow, states: dict[str, Any], catch_inherited: str | None) -> None:
    for name, state in states.items():
        kind = state["Type"]
        catch_to = next((c["Next"] for c in state.get("Catch", [])), None) or catch_inherited
        if kind == "Parallel":
            workflow.parallel_groups[name] = [b["StartAt"] for b in state["Branches"]]
            for branch in state["Branches"]:
                _flatten_into(workflow, branch["States"], catch_to)
        else:
            workflow.steps[name] = _step(name, state, catch_to)
        for target in _successors(state):
            for exit_step in _exits_of(states, name):
                for entry in _entries_of(states, target):
                    workflow.edges.add((exit_step, entry))


def _successors(state: dict[str, Any]) -> list[str]:
    out = [state.get("Next")] + [c.get("Next") for c in state.get("Choices", [])]
    out.append(state.get("Default"))
    return [t for t in out if t]


def _step(name: str, state: dict[str, Any], catch_to: str | None) -> Step:
    retry = None
    if state.get("Retry"):
        first = state["Retry"][0]
        retry = RetryPolicy(
            interval_seconds=float(first.get("IntervalSeconds", 1)),
            backoff_rate=float(first.get("BackoffRate", 2.0)),
            max_attempts=int(first.get("MaxAttempts", 3)),
            max_delay_seconds=(
                float(first["MaxDelaySeconds"]) if "MaxDelaySeconds" in first else None
            ),
        )
    choice = (state.get("Choices") or [{}])[0]
    return Step(
        name=name,
        kind=state["Type"],
        task_id=task_id_for(name),
        step=_step_path(state.get("Parameters", {})),
        resource=state.get("Resource"),
        retry=retry,
        catch_to=catch_to,
        choice_variable=choice.get("Variable"),
        choice_true=choice.get("Next"),
        choice_default=state.get("Default"),
        comment=state.get("Comment", ""),
    )


def _step_path(parameters: dict[str, Any]) -> str | None:
    """Find the riskstream step a Task runs, whichever AWS service shape names it."""
    for holder in ("Payload", "Arguments", "HyperParameters"):
        inner = parameters.get(holder, {})
        for key in ("step", "--step"):
            if key in inner:
                return str(inner[key])
    return None


CALLBACK_RESOURCE = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
HEARTBEAT_SECONDS = 120  # the step worker beats every HEARTBEAT_SECONDS / 6 while a step runs
TASK_TIMEOUT_SECONDS = 24 * 3600  # a step's upper bound (a heartbeat alone would make it 60 s)


def callback_definition(
    definition: dict[str, Any],
    queue_url: str,
    configuration_error: str,
    heartbeat_seconds: int = HEARTBEAT_SECONDS,
) -> dict[str, Any]:
    """``definition`` as Step Functions runs it with the step worker (docs/adr/0008): every Task
    sends ``{step, state, input, token, execution, attempt}`` to ``queue_url`` and waits for the
    worker's SendTaskSuccess or SendTaskFailure (``sqs:sendMessage.waitForTaskToken``).

    Retry, Catch, Choice and Parallel stay as written; three additions mirror the Airflow DAG:
    a Task's (or Parallel's) result lands at ``$.results.<state>`` (what the DAG's XComs are), a
    step that fails
    with ``configuration_error`` is never retried, and a Task whose worker stops beating
    (``HeartbeatSeconds``) fails as a Task would."""
    out = copy.deepcopy(definition)
    _to_callbacks(out["States"], queue_url, configuration_error, heartbeat_seconds, branch=False)
    return out


def _to_callbacks(
    states: dict[str, Any], queue_url: str, configuration_error: str, heartbeat: int, branch: bool
) -> None:
    for name, state in states.items():
        if state.get("Type") == "Parallel":
            for sub in state.get("Branches", []):
                _to_callbacks(sub["States"], queue_url, configuration_error, heartbeat, True)
            if not branch and "ResultPath" not in state:
                state["ResultPath"] = f"$.results.{name}"
            continue
        if state.get("Type") != "Task":
            continue
        step = _step_path(state.get("Parameters", {}))
        if step is None:
            raise AslError(f"state {name!r}: a Task must name the step it runs (Parameters)")
        state["Resource"] = CALLBACK_RESOURCE
        state["Parameters"] = {
            "QueueUrl": queue_url,
            "MessageBody": {
                "step": step,
                "state": name,
                "input.$": "$",
                "token.$": "$$.Task.Token",
                "execution.$": "$$.Execution.Id",
                "attempt.$": "$$.State.RetryCount",
            },
        }
        state["HeartbeatSeconds"] = heartbeat
        state["TimeoutSeconds"] = max(TASK_TIMEOUT_SECONDS, heartbeat + 1)
        if state.get("Retry"):
            never = {"ErrorEquals": [configuration_error], "MaxAttempts": 0}
            state["Retry"] = [never, *state["Retry"]]
        if branch:  # a branch's output is one element of its Parallel's result list
            state["ResultSelector"] = {f"{name}.$": "$"}
        elif "ResultPath" not in state:
            state["ResultPath"] = f"$.results.{name}"


def main() -> None:
    """Print the expanded definition (``python -m pipeline.asl > machine.asl.json``)."""
    import sys

    sys.stdout.write(json.dumps(load_definition(), indent=2) + "\n")


if __name__ == "__main__":
    main()
