"""A fork server for the tests' `dag.test()` runs: Airflow and the steps' libraries imported once.

Started by tests/dags/conftest.py, one per test session's Airflow home, with that home's Airflow
environment. It imports what every run imports (Airflow, its in-process execution API with its
versioned routes, the DAG builder, the pipeline's steps and their libraries: 10-30 s of a busy
2-core machine per run), then reads one JSON request a line on stdin and answers each by forking:
every run is still a process of its own (the run's environment and settings, its own output file,
its own exit), only without importing everything again. It answers ``PID <pid>`` when the run
starts and ``EXIT <code>`` when it ended; the run's result is the JSON file the request names.

Airflow's ORM disposes of its pooled connections in a forked child itself (settings.configure_orm
registers it); this server opens none, and no thread runs when it forks (it checks).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import sys
import threading
import traceback
from typing import Any

# What the runs import: Airflow's DAG and dag.test() machinery, the DAG builder, the tests'
# stand-in steps and the pipeline's steps with their libraries (what the step worker preloads).
AIRFLOW = (
    "airflow.sdk",
    "airflow.models.dag",
    "airflow.models.dagrun",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "pipeline.dag_builder",
    "tests.dags.steps_for_tests",
)


def run_dag(dag_file: str, params: dict[str, Any]) -> dict[str, Any]:
    """`dag.test()` of the DAG ``dag_file`` defines, with ``params`` as the run's conf: the run's
    state and id, and each task's state, tries and times."""
    import runpy

    dag = runpy.run_path(dag_file)["dag"]
    dag_run = dag.test(run_conf=params)
    instances = dag_run.get_task_instances()
    return {
        "run": str(dag_run.state),
        "run_id": dag_run.run_id,
        "states": {ti.task_id: str(ti.state) for ti in instances},
        "tries": {ti.task_id: ti.try_number for ti in instances},
        "times": {
            ti.task_id: [str(ti.start_date or ""), str(ti.end_date or "")] for ti in instances
        },
    }


def _run(request: dict[str, Any]) -> None:
    """In the forked child: the run itself; never returns."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the request pipe is the server's
        os.close(devnull)
        os.environ.clear()
        os.environ.update(request["env"])
        result = run_dag(request["dag_file"], request["params"])
        with open(request["result"], "w") as out:
            json.dump(result, out)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # as a process that exits normally does
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _warm_execution_api() -> None:
    """Build dag.test()'s in-process execution API as Airflow does once per process (it caches
    it) and serve it one request, which makes its versioned routes (seconds of a busy machine,
    on every run's first task otherwise). In this thread, on a loop closed after it: no thread
    of it is left to fork."""
    import asyncio

    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    app = in_process_api_server().app

    async def first_request() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
            await client.get("/execution/health")

    asyncio.run(first_request())


def main() -> None:
    # the answers go to the pipe the server was given as stdout; what the imports print, to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from pipeline.sfn_worker import PRELOAD

    for name in (*AIRFLOW, *PRELOAD):
        importlib.import_module(name)
    _warm_execution_api()
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:  # a thread would not survive the fork: say so rather than hang a run
        print(f"FAILED threads running before the first fork: {threads}", file=answers, flush=True)
        sys.exit(1)
    print("READY", file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            _run(request)
        print(f"PID {pid}", file=answers, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {os.waitstatus_to_exitcode(status)}", file=answers, flush=True)


if __name__ == "__main__":
    main()
