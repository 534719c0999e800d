"""`riskstream run`: the main job end to end, driven through Airflow (what `make run` calls).

Starts the local cloud, provisions it, starts MLflow and Airflow, triggers the pipeline DAG
through Airflow's REST API so that Airflow's scheduler runs every task, follows it, and ends with
a summary. Phase timings are saved to ``<state_dir>/runs/last-run.json`` for the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import modelkinds
from riskstream.commands import CommandError
from riskstream.names import DEFAULT_SOURCE
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="start the cloud and services, then run the pipeline end to end through Airflow",
        description="What `make run` does after set-up. Parameters become the DAG run's params.",
    )
    run.add_argument("--source", choices=["synthetic", "taiwan", "csv"], default=DEFAULT_SOURCE)
    run.add_argument("--accounts", type=int, default=None, help="synthetic: number of accounts")
    run.add_argument("--months", type=int, default=None, help="synthetic: months of activity")
    run.add_argument(
        "--models", type=modelkinds.models_option, default=None, help=modelkinds.models_help()
    )
    run.add_argument("--csv-path", default=None, help="csv: your file")
    run.add_argument("--csv-mapping", default=None, help="csv: mapping JSON file")
    run.add_argument(
        "--timeout", type=float, default=3600, help="give up following the run after this many s"
    )
    run.set_defaults(func=run_cmd)


class Phases:
    """Wall time per phase, printed at the end and saved for `make bench`."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        print(f"==> {name}", flush=True)
        try:
            yield
        finally:
            self.items.append((name, time.monotonic() - started))


def run_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from infra.airflow import AirflowClient, AirflowError
    from infra.cloud import cloud_service
    from infra.provision import provision
    from infra.services import ServiceError
    from pipeline.dag_builder import PIPELINE_DAG_ID

    phases = Phases()
    total_started = time.monotonic()
    try:
        if settings.target == "embedded":
            with phases.phase("local cloud"):
                cloud_service(settings).up()
        with phases.phase("provision"):
            resources = provision(settings)
            created = sum(r.action == "created" for r in resources)
            print(f"    {created} created, {len(resources) - created} already existed")
        with phases.phase("services"):  # the Spark session, MLflow and Airflow, side by side
            _start_side_by_side(settings)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None

    conf = {
        key: value
        for key, value in {
            "source": args.source,
            "accounts": args.accounts,
            "months": args.months,
            "models": args.models,
            "csv_path": args.csv_path,
            "csv_mapping": args.csv_mapping,
        }.items()
        if value is not None
    }
    client = AirflowClient.for_settings(settings)
    try:
        client.wait_for_dag(PIPELINE_DAG_ID)
        client.unpause(PIPELINE_DAG_ID)
        run_id = client.trigger(PIPELINE_DAG_ID, conf)
    except AirflowError as exc:
        raise CommandError(str(exc)) from None
    print(f"==> pipeline: triggered {PIPELINE_DAG_ID} run {run_id} with {conf}")
    print(f"    follow it at {settings.airflow_url}/dags/{PIPELINE_DAG_ID}")
    with phases.phase("pipeline run in Airflow"):
        states = follow(client, PIPELINE_DAG_ID, run_id, args.timeout, phases)
    final = client.run_state(PIPELINE_DAG_ID, run_id)

    if final == "success":
        with phases.phase("api and dashboard"):
            try:
                _start(settings, "api")
                _start(settings, "dashboard")
            except ServiceError as exc:
                logger.warning("could not start a serving service: %s", exc)
    results = {task: client.xcom(PIPELINE_DAG_ID, run_id, task) for task in states}
    print_summary(settings, final, states, results, phases, time.monotonic() - total_started)
    _save_timings(settings, run_id, final, phases)
    if final != "success":
        failed = [t for t, ti in states.items() if ti.get("state") == "failed"]
        _explain_failure(settings, PIPELINE_DAG_ID, run_id, failed, states)
        return 1
    return 0


def _start_side_by_side(settings: Settings) -> None:
    """Start the warm Spark session, MLflow and Airflow at once: each mostly waits on its own
    child process, so together they take about as long as the slowest (Airflow), not the sum.
    A Spark session that does not start is a warning (each ETL task then starts its own)."""
    from concurrent.futures import ThreadPoolExecutor

    from infra.airflow import start_airflow
    from infra.services import ServiceError

    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="start") as pool:
        spark = pool.submit(_start, settings, "spark")
        mlflow = pool.submit(_start, settings, "mlflow")
        airflow = pool.submit(start_airflow, settings)
        try:
            spark.result()
        except (ServiceError, ValueError) as exc:
            logger.warning("no warm Spark session (%s); each ETL task starts its own", exc)
        mlflow.result()
        airflow.result()


def _start(settings: Settings, name: str) -> None:
    """Start one service of the registry and say where it answers."""
    from pipeline.stack import SERVICES_BY_NAME

    status = SERVICES_BY_NAME[name].make(settings).up()
    print(f"    {status.name} at {status.url}")


def follow(
    client: Any, dag_id: str, run_id: str, timeout: float, phases: Phases
) -> dict[str, dict[str, Any]]:
    """Print each task's state changes until the run ends; record task durations as phases."""
    started = time.monotonic()
    seen: dict[str, str] = {}
    states: dict[str, dict[str, Any]] = {}
    while time.monotonic() - started < timeout:
        states = client.task_states(dag_id, run_id)
        for task_id, ti in sorted(states.items(), key=lambda kv: kv[1].get("start_date") or "~"):
            state = ti.get("state")
            if state is None:  # not scheduled yet: nothing to say
                continue
            if seen.get(task_id) != state:
                seen[task_id] = state
                elapsed = time.monotonic() - started
                extra = ""
                if state in TERMINAL and ti.get("duration") is not None:
                    extra = f" in {ti['duration']:.1f}s"
                    phases.items.append((f"  task {task_id}", float(ti["duration"])))
                if ti.get("try_number", 1) and ti.get("try_number", 1) > 1:
                    extra += f" (attempt {ti['try_number']})"
                print(f"    [{elapsed:6.0f}s] {task_id:<24} {state}{extra}", flush=True)
        run_state = client.run_state(dag_id, run_id)
        if run_state in ("success", "failed"):
            return client.task_states(dag_id, run_id)
        time.sleep(3)
    raise CommandError(
        f"the pipeline run {run_id} did not finish within {timeout:.0f}s; it goes on in Airflow"
    )


def _scalars(result: Any, limit: int = 8) -> str:
    if not isinstance(result, dict):
        return "" if result is None else str(result)[:120]
    parts = []
    for key, value in result.items():
        if isinstance(value, bool | int | float | str) and len(parts) < limit:
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            parts.append(f"{key}={text[:60]}")
    return ", ".join(parts)


def print_summary(
    settings: Settings,
    final: str,
    states: dict[str, dict[str, Any]],
    results: dict[str, Any],
    phases: Phases,
    total: float,
) -> None:
    print(f"\n==> pipeline {final.upper()}\n")
    order = sorted(states, key=lambda t: states[t].get("start_date") or "~")
    for task_id in order:
        ti = states[task_id]
        line = _scalars(results.get(task_id))
        print(f"  {task_id:<24} {ti.get('state') or '-':<16} {line}")
    evaluation = results.get("evaluate_and_register") or {}
    models = evaluation.get("models") if isinstance(evaluation, dict) else None
    if isinstance(models, dict | list):
        print("\n  models:")
        items = models.items() if isinstance(models, dict) else enumerate(models)
        for name, metrics in items:
            print(f"    {name!s:<8} {_scalars(metrics, 6)}")
    if isinstance(evaluation, dict) and "reason" in evaluation:
        print(f"\n  champion decision: {evaluation.get('reason')}")
    print("\n  phase timings:")
    for name, seconds in phases.items:
        print(f"    {name:<30} {seconds:7.1f}s")
    print(f"    {'total':<30} {total:7.1f}s")
    print("\n  where to look:")
    print(
        f"    Airflow    {settings.airflow_url}  (login admin; password in "
        f"{settings.state_dir / 'airflow' / 'simple_auth_manager_passwords.json.generated'})"
    )
    print(f"    MLflow     {settings.mlflow_tracking_uri}")
    print(f"    Dashboard  {settings.dashboard_url}")
    print(f"    API        {settings.api_url}/docs")
    print(f"    Cloud      {settings.endpoint_url}   (stop everything: make stop)")


def _explain_failure(
    settings: Settings, dag_id: str, run_id: str, failed: list[str], states: dict[str, Any]
) -> None:
    from infra.airflow import task_log_path

    for task_id in failed:
        attempt = int(states[task_id].get("try_number") or 1)
        print(
            f"\nFAILED: task {task_id} (attempt {attempt}); its log: "
            f"{task_log_path(settings, dag_id, run_id, task_id, attempt)}"
        )
    if not failed:
        print("\nFAILED: the run failed; see the Airflow UI for details")


def _save_timings(settings: Settings, run_id: str, final: str, phases: Phases) -> None:
    out = settings.state_dir / "runs" / "last-run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"run_id": run_id, "state": final, "phases": [[n, s] for n, s in phases.items]},
            indent=2,
        )
    )
