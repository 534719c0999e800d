"""The DAGs folder parses cleanly and the pipeline DAG mirrors the ASL definition exactly."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest

import modelkinds
from pipeline.asl import ASL_PATH, expand_kinds, task_id_for

pytestmark = pytest.mark.unit
DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_expected_dags(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"credit_risk_pipeline", "continuous_landing", "daily_scoring"}
    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert dag.catchup is False, dag_id
        assert "riskstream" in dag.tags


def test_parsing_touches_no_network_variable_or_connection(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import Connection, Variable

    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("DAG parsing must not look up Variables, Connections or the network")

    monkeypatch.setattr(Variable, "get", forbidden)
    monkeypatch.setattr(Connection, "get", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == 3


def _expected_from_asl() -> tuple[set[str], set[tuple[str, str]], dict[str, dict]]:
    """Read the ASL JSON directly (through pipeline.asl only to expand its per-kind template
    branch) so the parity check is independent."""
    definition = expand_kinds(json.loads(ASL_PATH.read_text()))
    states = definition["States"]
    tasks: set[str] = set()
    edges: set[tuple[str, str]] = set()
    retries: dict[str, dict] = {}

    def entry(name: str) -> list[str]:
        s = states[name]
        return [b["StartAt"] for b in s["Branches"]] if s["Type"] == "Parallel" else [name]

    def exits(name: str) -> list[str]:
        s = states[name]
        if s["Type"] != "Parallel":
            return [name]
        return [n for b in s["Branches"] for n, bs in b["States"].items() if bs.get("End")]

    for name, state in states.items():
        nexts = [state.get("Next"), state.get("Default")]
        nexts += [c["Next"] for c in state.get("Choices", [])]
        catch = [c["Next"] for c in state.get("Catch", [])]
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                for bname, bstate in branch["States"].items():
                    tasks.add(bname)
                    retries[bname] = bstate["Retry"][0]
                    edges.update((bname, c) for c in catch)
        else:
            tasks.add(name)
            if "Retry" in state:
                retries[name] = state["Retry"][0]
        for target in filter(None, nexts):
            edges.update((a, b) for a in exits(name) for b in entry(target))
        for target in catch:
            edges.add((name, target)) if state["Type"] != "Parallel" else None
    return tasks, edges, retries


def test_pipeline_dag_mirrors_the_state_machine(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["credit_risk_pipeline"]
    tasks, edges, retries = _expected_from_asl()
    assert {t.task_id for t in dag.tasks} == {task_id_for(n) for n in tasks}
    dag_edges = {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids}
    assert dag_edges == {(task_id_for(a), task_id_for(b)) for a, b in edges}
    for name, retry in retries.items():
        task = dag.get_task(task_id_for(name))
        assert task.retries == retry["MaxAttempts"], name
        assert task.retry_delay == timedelta(seconds=retry["IntervalSeconds"]), name
        assert task.retry_exponential_backoff == retry["BackoffRate"], name
        assert task.max_retry_delay == timedelta(seconds=retry["MaxDelaySeconds"]), name


def test_scheduled_dags_retry_twice_with_a_capped_backoff(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id in ("continuous_landing", "daily_scoring"):
        for task in dagbag.dags[dag_id].tasks:
            assert task.retries == 2, task.task_id
            assert task.retry_delay == timedelta(seconds=30), task.task_id
            assert task.retry_exponential_backoff == 2.0, task.task_id
            assert task.max_retry_delay == timedelta(minutes=10), task.task_id


def test_catch_and_choice_become_trigger_rules(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["credit_risk_pipeline"]
    assert dag.get_task("handle_failure").trigger_rule == "one_failed"
    assert dag.get_task("pipeline_failed").upstream_task_ids == {"handle_failure"}
    assert dag.get_task("score_portfolio").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("evaluate_and_register").trigger_rule == "none_failed_min_one_success"
    assert dag.get_task("promote_challenger").downstream_task_ids == {
        "promote_champion",
        "score_portfolio",
    }


def test_params_have_defaults_for_the_trigger_form(dagbag) -> None:  # type: ignore[no-untyped-def]
    params = dagbag.dags["credit_risk_pipeline"].params
    assert params["source"] == "synthetic"
    assert params.get_param("source").schema["enum"] == ["synthetic", "taiwan", "csv"]
    assert params["models"] == modelkinds.default_models()  # every registered kind
    assert {"lr", "rf", "xgb"} <= set(params["models"].split(","))
    assert isinstance(params["accounts"], int)
