"""The DAG builder's behaviour under `dag.test()`: retries, the failure handler, the choice.

Uses a small ASL machine with every construct of the pipeline (tests/dags/test_machine.asl.json)
and step functions with injected faults, against the real local cloud.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.dags.conftest import run_dag_test

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
Runner = Callable[[str, bool], dict[str, Any]]


@pytest.fixture
def run_machine(airflow_home: Path, provisioned: Settings, tmp_path: Path) -> Runner:
    """Runs the test machine with a fault mode and the choice's input; the steps count their
    tries in ``tmp_path``."""

    def run(mode: str, promote: bool) -> dict[str, Any]:
        params = {"counter_dir": str(tmp_path), "mode": mode, "promote": promote}
        return run_dag_test(
            airflow_home, provisioned, HERE / "test_machine.asl.json", params, timeout=300
        )

    return run


def assert_states(out: dict[str, Any], **expected: str) -> None:
    """The named tasks ended in the expected states (the others are not looked at)."""
    assert {task: out["states"][task] for task in expected} == expected


def test_transient_failure_is_retried_and_the_run_succeeds(
    run_machine: Runner, tmp_path: Path
) -> None:
    out = run_machine("transient", True)
    assert out["run"] == "success"
    assert out["tries"]["first"] == 2  # failed once, retried once
    assert (tmp_path / "flaky").read_text() == "2"
    # no handler; the choice took the promote branch, and the join after it still ran
    assert_states(
        out,
        first="success",
        on_failure="skipped",
        failed="skipped",
        promote="success",
        finish="success",
        left="success",
        right="success",
    )


def test_choice_default_skips_the_branch_and_joins(run_machine: Runner) -> None:
    out = run_machine("ok", False)
    assert out["run"] == "success"
    assert_states(out, promote="skipped", finish="success", done="success")


def test_permanent_failure_reaches_the_handler_and_fails_the_run(
    run_machine: Runner, provisioned: Settings
) -> None:
    out = run_machine("permanent", True)
    assert out["run"] == "failed"
    assert out["tries"]["first"] == 2  # MaxAttempts 1: one retry, then give up
    assert_states(
        out, first="failed", on_failure="success", failed="failed", done="upstream_failed"
    )
    # the handler wrote a summary naming the failed step and its error
    s3 = make_client(provisioned, "s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(
            Bucket=provisioned.bucket("artifacts"), Prefix="pipeline-runs/"
        ).get("Contents", [])
    ]
    summary_key = next(k for k in keys if k.endswith("failure-summary.json"))
    summary = json.loads(
        s3.get_object(Bucket=provisioned.bucket("artifacts"), Key=summary_key)["Body"].read()
    )
    assert summary["failed_steps"] == ["First"]
    assert "permanent failure" in summary["failures"][0]["error"]


def test_configuration_error_fails_at_once_without_retries(
    run_machine: Runner, provisioned: Settings, tmp_path: Path
) -> None:
    out = run_machine("configuration", True)
    assert out["run"] == "failed"
    assert out["tries"]["first"] == 1  # the ASL's Retry allows one more: not used
    assert (tmp_path / "flaky").read_text() == "1"
    assert_states(out, first="failed", on_failure="success")
    # the failure note (what `riskstream run` prints) has the error itself
    from pipeline.run import failure_notes

    notes = failure_notes(provisioned, out["run_id"])
    assert [n["step"] for n in notes] == ["First"]
    assert notes[0]["try_number"] == 1
    assert notes[0]["error"] == (
        "ConfigurationError: mapping 'entity_id' is an empty string; name the id column"
    )


def test_a_value_set_only_in_dotenv_reaches_an_airflow_task(
    airflow_home: Path, provisioned: Settings, tmp_path: Path
) -> None:
    """The command that starts Airflow reads .env; its tasks get the value via Settings.to_env."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("RISKSTREAM_SHARDS=7\nRISKSTREAM_API_URL=http://127.0.0.1:8999\n")
    parent = Settings.from_env(env=provisioned.to_env(), dotenv=None)
    parent = Settings.from_env(
        env={
            k: v
            for k, v in parent.to_env().items()
            if k not in ("RISKSTREAM_SHARDS", "RISKSTREAM_API_URL")
        },
        dotenv=dotenv,
    )
    assert (parent.shard_count, parent.api_url) == (7, "http://127.0.0.1:8999")
    machine = tmp_path / "echo.asl.json"
    machine.write_text(
        json.dumps(
            {
                "StartAt": "Echo",
                "States": {
                    "Echo": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"Payload": {"step": "echo_settings"}},
                        "End": True,
                    }
                },
            }
        )
    )
    out = run_dag_test(airflow_home, parent, machine, {"counter_dir": str(tmp_path)}, timeout=300)
    assert out["run"] == "success", out
    seen = json.loads((tmp_path / "settings.json").read_text())
    assert (seen["shard_count"], seen["api_url"]) == (7, "http://127.0.0.1:8999")
    assert seen["prefix"] == provisioned.prefix
