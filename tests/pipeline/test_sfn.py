"""The ASL as Step Functions runs it with the step worker, and what the worker makes of a message
(pure: no server)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from infra.services import AddressError
from pipeline.asl import CALLBACK_RESOURCE, callback_definition, load_definition
from pipeline.sfn import state_runs
from pipeline.sfn_worker import step_context, worker_address
from riskstream import names
from riskstream.settings import Settings

pytestmark = pytest.mark.unit
MACHINE = Path(__file__).resolve().parents[1] / "dags" / "test_machine.asl.json"
QUEUE = "http://127.0.0.1:4566/000000000000/q"


def _tasks(states: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
    return found


def test_every_task_sends_its_step_to_the_queue_and_waits_for_the_token() -> None:
    original = load_definition()
    rendered = callback_definition(original, QUEUE, names.STEP_ERROR_CONFIGURATION)
    tasks = _tasks(rendered["States"])
    assert set(tasks) == set(_tasks(original["States"]))
    assert "TrainLR" in tasks  # the kinds' template branch is expanded first
    for name, task in tasks.items():
        assert task["Resource"] == CALLBACK_RESOURCE
        body = task["Parameters"]["MessageBody"]
        assert body["state"] == name
        assert body["token.$"] == "$$.Task.Token"
        assert body["input.$"] == "$"
        assert 0 < task["HeartbeatSeconds"] < task["TimeoutSeconds"]
    assert tasks["ProduceEvents"]["Parameters"]["MessageBody"]["step"] == "produce_events"
    assert tasks["TrainXGB"]["Parameters"]["MessageBody"]["step"] == "train_xgb"
    # results by state, as the DAG's XComs: top-level at $.results.<state>, a branch's keyed
    assert tasks["HandleFailure"]["ResultPath"] == "$.results.HandleFailure"
    assert tasks["TrainLR"]["ResultSelector"] == {"TrainLR.$": "$"}
    # a configuration error is never retried; the ASL's own retriers follow, unchanged
    retry = tasks["LandEvents"]["Retry"]
    assert retry[0] == {"ErrorEquals": [names.STEP_ERROR_CONFIGURATION], "MaxAttempts": 0}
    assert retry[1:] == original["States"]["LandEvents"]["Retry"]
    # Choice, Parallel, Catch, Succeed and Fail are the engine's, as written
    for name in ("PromoteChallenger?", "Done", "PipelineFailed"):
        assert rendered["States"][name] == original["States"][name]
    assert rendered["States"]["TrainModels"]["Catch"] == original["States"]["TrainModels"]["Catch"]


def test_a_parallel_without_result_path_keeps_the_state() -> None:
    rendered = callback_definition(
        json.loads(MACHINE.read_text()), QUEUE, names.STEP_ERROR_CONFIGURATION
    )
    assert rendered["States"]["Both"]["ResultPath"] == "$.results.Both"
    assert rendered["States"]["Decide"]["ResultPath"] == "$.results.Decide"


def test_the_message_becomes_the_steps_context() -> None:
    message = {
        "step": "evaluate_and_register",
        "state": "EvaluateAndRegister",
        "execution": "arn:aws:states:us-east-1:1:execution:m:run-1",
        "attempt": 0,
        "input": {
            "params": {"source": "synthetic"},
            "run_date": "2026-01-02",
            "results": {
                "StartTraining": {"parent_run_id": "abc"},
                "TrainModels": [{"TrainLR": {"auc": 0.7}}, {"TrainRF": {"auc": 0.8}}],
            },
        },
    }
    ctx = step_context(message)
    assert (ctx.run_id, ctx.run_date, ctx.param("source")) == ("run-1", "2026-01-02", "synthetic")
    assert ctx.results["StartTraining"] == {"parent_run_id": "abc"}
    assert ctx.results["TrainRF"] == {"auc": 0.8}  # a Parallel's branches, by state


def test_the_worker_serves_on_loopback_only() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_SFN_WORKER_URL": "http://0.0.0.0:8790"})
    with pytest.raises(AddressError, match="RISKSTREAM_SFN_WORKER_URL"):
        worker_address(settings)
    assert worker_address(Settings()) == ("127.0.0.1", 8790)


def _event(i: int, prev: int, kind: str, **details: Any) -> dict[str, Any]:
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=i)
    return {"id": i, "previousEventId": prev, "type": kind, "timestamp": at, **details}


def test_the_history_says_what_each_state_did() -> None:
    events = [
        _event(1, 0, "ExecutionStarted"),
        _event(2, 1, "TaskStateEntered", stateEnteredEventDetails={"name": "First"}),
        _event(3, 2, "TaskScheduled"),
        _event(4, 3, "TaskFailed", taskFailedEventDetails={"error": "ValueError", "cause": "x"}),
        _event(5, 4, "TaskScheduled"),
        _event(6, 5, "TaskSucceeded", taskSucceededEventDetails={"output": '{"n": 1}'}),
        _event(7, 6, "TaskStateExited", stateExitedEventDetails={"name": "First"}),
        _event(8, 7, "TaskStateEntered", stateEnteredEventDetails={"name": "TrainLR"}),
        _event(9, 8, "TaskScheduled"),
        _event(10, 9, "TaskSucceeded", taskSucceededEventDetails={"output": '{"skipped": true}'}),
        _event(11, 10, "TaskStateExited", stateExitedEventDetails={"name": "TrainLR"}),
    ]
    runs = state_runs(events)
    assert list(runs) == ["First", "TrainLR"]
    first = runs["First"]
    assert (first.status, first.attempts, first.result) == ("success", 2, {"n": 1})
    assert first.errors == ["ValueError: x"]
    assert first.seconds == 5.0
    assert (runs["TrainLR"].status, runs["TrainLR"].task_id) == ("skipped", "train_lr")
