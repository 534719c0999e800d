"""The same state machine on both orchestrators: Airflow (the DAG built from the ASL) and the
local cloud's Step Functions (the ASL itself, its Tasks run by the step worker).

Over the small machine of tests/dags/test_machine.asl.json (every construct the pipeline uses)
with the stand-in steps of steps_for_tests.py: the states that ran, how often each was tried,
the order constraints of the ASL's edges, the choice, and the failure path (a step that fails, is
retried, then caught by the handler, whose summary names it) must be the same on both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from infra.services import ManagedService
from pipeline import sfn
from pipeline.asl import load_workflow
from pipeline.sfn_worker import worker_service
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import split_s3
from tests.conftest import running_on_a_free_port
from tests.dags.conftest import run_dag_test

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
MACHINE = HERE / "test_machine.asl.json"
TEST_STEPS = "tests.dags.steps_for_tests:TEST_STEPS"
Runner = Callable[[str, bool], dict[str, Any]]


@pytest.fixture
def worker(provisioned: Settings) -> Iterator[Settings]:
    """The step worker, with the stand-in steps, on a free port (its settings)."""

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = provisioned.with_overrides(sfn_worker_url=f"http://127.0.0.1:{port}")
        # the stand-in steps import nothing heavy: the fork server need not preload
        return settings, worker_service(settings, extra_steps=[TEST_STEPS], preload=False)

    with running_on_a_free_port(configure) as (settings, _):
        yield settings


def on_stepfunctions(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Run the test machine as a Step Functions execution; the same shape as run_dag_test's."""
    sfn.enable_execution(settings)
    arn = sfn.deploy(settings, MACHINE, name=f"{settings.prefix}-m{uuid.uuid4().hex[:6]}")
    execution = sfn.start(settings, arn, params)
    outcome = sfn.wait(settings, execution, timeout=240, poll=0.3)
    runs = outcome.runs
    return {
        "run": "success" if outcome.status == "SUCCEEDED" else "failed",
        "run_id": execution.rsplit(":", 1)[-1],
        "states": {r.task_id: r.status for r in runs.values() if r.type == "Task"},
        "tries": {r.task_id: r.attempts for r in runs.values() if r.type == "Task"},
        "times": {
            r.task_id: [r.entered.isoformat(), r.exited.isoformat() if r.exited else ""]
            for r in runs.values()
            if r.type == "Task" and r.entered
        },
        "history": runs,
    }


def ran(out: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Task states that ran, with outcome and tries (skipped or upstream_failed never ran)."""
    return {
        task: (state, out["tries"][task])
        for task, state in out["states"].items()
        if state in ("success", "failed") and task in TASKS
    }


TASKS = {s.task_id for s in load_workflow(MACHINE).steps.values() if s.kind == "Task"}


def order_holds(out: dict[str, Any]) -> None:
    """Every ASL edge between two Tasks that ran: the first ended before the second started."""
    workflow = load_workflow(MACHINE)
    times = {
        t: [datetime.fromisoformat(x) if x else None for x in v] for t, v in out["times"].items()
    }
    tasks = {n: s.task_id for n, s in workflow.steps.items() if s.kind == "Task"}
    for a, b in workflow.edges:
        if a in tasks and b in tasks and tasks[a] in ran(out) and tasks[b] in ran(out):
            end_a, start_b = times[tasks[a]][1], times[tasks[b]][0]
            assert (
                end_a and start_b and end_a.replace(tzinfo=None) <= start_b.replace(tzinfo=None)
            ), (a, b, out["times"])


def summary(settings: Settings, run_id: str) -> dict[str, Any]:
    bucket, key = split_s3(names.pipeline_run_location(settings, run_id, "failure-summary.json"))
    body = make_client(settings, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return dict(json.loads(body))


@pytest.mark.parametrize(
    ("mode", "promote"),
    # retried then succeeds (and the choice promotes); retried then caught; never retried, caught
    [("transient", True), ("permanent", True), ("configuration", True)],
)
def test_both_orchestrators_run_the_same_states_the_same_way(
    airflow_home: Path, worker: Settings, tmp_path: Path, mode: str, promote: bool
) -> None:
    airflow_dir, sfn_dir = tmp_path / "airflow", tmp_path / "sfn"
    airflow_dir.mkdir()
    sfn_dir.mkdir()
    # each run counts in a directory of its own and is summarized under its own run id: the
    # Airflow run (a process of its own) goes on while the execution runs
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="airflow-run") as pool:
        on_airflow = pool.submit(
            run_dag_test,
            airflow_home,
            worker,
            MACHINE,
            {"counter_dir": str(airflow_dir), "mode": mode, "promote": promote},
            timeout=300,
        )
        stepfunctions = on_stepfunctions(
            worker, {"counter_dir": str(sfn_dir), "mode": mode, "promote": promote}
        )
        airflow = on_airflow.result()
    assert stepfunctions["run"] == airflow["run"]
    assert ran(stepfunctions) == ran(airflow)
    order_holds(airflow)
    order_holds(stepfunctions)
    # the flaky step counted its attempts the same on both
    assert (sfn_dir / "flaky").read_text() == (airflow_dir / "flaky").read_text()
    if airflow["run"] == "failed":  # the handler caught it and named the step on both
        a, s = summary(worker, airflow["run_id"]), summary(worker, stepfunctions["run_id"])
        assert a["failed_steps"] == s["failed_steps"] == ["First"]
        assert [f["error"] for f in a["failures"]] == [f["error"] for f in s["failures"]]
        assert [f["try_number"] for f in a["failures"]] == [f["try_number"] for f in s["failures"]]
    # the history is the Step Functions API's: the retried step's failed attempt is in it
    first = stepfunctions["history"]["First"]
    if mode == "transient":
        assert (first.attempts, first.status) == (2, "success")
        assert first.errors == ["ConnectionError: transient failure on attempt 1"]
