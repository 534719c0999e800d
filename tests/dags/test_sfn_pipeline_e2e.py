"""The pipeline itself on both orchestrators over the same small portfolio: Airflow's DAG under
`dag.test()`, then a Step Functions execution of the ASL with the step worker (real moto over
HTTP, real Spark, a real MLflow). The steps that ran, the order the ASL's edges ask for, and the
outputs (catalog tables, feature rows, the registered champion, every account's score and
decision) must be the same. The failure path is compared over the small machine
(test_sfn_parity.py)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import modelkinds
from infra.provision import provision
from infra.services import ManagedService
from pipeline import sfn
from pipeline.asl import load_workflow
from pipeline.outputs import outputs
from pipeline.sfn_worker import worker_service
from riskstream.settings import Settings
from tests.conftest import running_on_a_free_port
from tests.dags.conftest import run_pipeline_end_to_end

pytestmark = pytest.mark.e2e

# one model kind with the search bounded by its trial count, not by time, so that both runs
# train the same model; the others are skipped on both (the choice of the run's params)
PARAMS = {"source": "synthetic", "accounts": 300, "months": 12, "seed": 11, "models": "lr",
          "max_ece": 0.25}  # fmt: skip


def _order_holds(times: dict[str, tuple[datetime, datetime]]) -> None:
    workflow = load_workflow()
    ids = {n: s.task_id for n, s in workflow.steps.items() if s.kind == "Task"}
    for a, b in workflow.edges:
        if ids.get(a) in times and ids.get(b) in times:
            assert times[ids[a]][1] <= times[ids[b]][0], (a, b)


def _naive(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)


def _on_step_functions(base: Settings, tmp_path: Path) -> tuple[Settings, sfn.Outcome]:
    """The ASL as a Step Functions execution with the step worker, on fresh provisioned settings
    derived from ``base``: its settings and outcome."""

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = base.with_overrides(
            prefix=f"ps{uuid.uuid4().hex[:8]}",
            state_dir=tmp_path / "sfn" / "state",
            sfn_worker_url=f"http://127.0.0.1:{port}",
        )
        provision(settings)
        return settings, worker_service(settings)

    with running_on_a_free_port(configure) as (settings, _):
        sfn.enable_execution(settings)
        execution = sfn.start(settings, sfn.deploy(settings), PARAMS)
        return settings, sfn.wait(settings, execution, timeout=1800, poll=0.5)


@pytest.mark.timeout(2400)
def test_the_pipeline_is_the_same_on_airflow_and_step_functions(
    airflow_home: Path, mlflow_settings: Settings, tmp_path: Path
) -> None:
    # The two runs share nothing but the servers (each has its own prefix: buckets, stream,
    # tables, registered model), so Airflow's runs in a thread while Step Functions' executes:
    # the test waits for the longer of the two instead of their sum.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="airflow-run") as pool:
        on_airflow = pool.submit(
            run_pipeline_end_to_end,
            airflow_home,
            mlflow_settings,
            tmp_path / "airflow",
            prefix="pa",
            params=PARAMS,
            log_name="pipeline-parity-airflow.log",
            succeeded=(),
        )
        settings, outcome = _on_step_functions(mlflow_settings, tmp_path)
        airflow_settings, airflow = on_airflow.result()
    task_ids = {s.task_id for s in load_workflow().steps.values() if s.kind == "Task"}
    airflow_did = {
        state: {t for t, s in airflow["states"].items() if s == state and t in task_ids}
        for state in ("success", "skipped")
    }
    assert outcome.status == "SUCCEEDED", (outcome.error, outcome.cause)
    tasks = [r for r in outcome.runs.values() if r.type == "Task"]
    # the same steps ran; the model kinds not chosen were skipped on both (Airflow also skips
    # the failure handler, which Step Functions never enters)
    assert {r.task_id for r in tasks if r.status == "success"} == airflow_did["success"]
    skipped = {r.task_id for r in tasks if r.status == "skipped"}
    assert skipped == {f"train_{k}" for k in modelkinds.names() if k != "lr"}
    assert skipped <= airflow_did["skipped"]
    _order_holds({r.task_id: (r.entered, r.exited) for r in tasks if r.status == "success"})
    _order_holds(
        {
            t: (_naive(v[0]), _naive(v[1]))
            for t, v in airflow["times"].items()
            if airflow["states"][t] == "success"
        }
    )
    # the same outputs: tables, feature rows, champion (version and kind), every score
    expected: dict[str, Any] = outputs(airflow_settings)
    assert outputs(settings) == expected
    assert expected["registered"] == ("1", "lr")  # the champion: version 1, a LR
