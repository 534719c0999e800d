"""Airflow reads its configuration when first imported: give the test session a private home."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="rs-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
# Always the private home, whatever the machine: a user's own AIRFLOW_HOME or AIRFLOW__* settings
# (their configuration, their database) must not reach the tests.
for _name in [n for n in os.environ if n.startswith("AIRFLOW__")]:
    del os.environ[_name]
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """A migrated SQLite metadata DB and an empty dags folder, for `dag.test()` runs, with the
    fork server those runs start from (:class:`DagTestServer`): it imports Airflow and the
    pipeline's libraries while the database migrates."""
    home = Path(tempfile.mkdtemp(prefix="rs-airflow-run-"))
    (home / "dags").mkdir()
    env = {**os.environ, **airflow_env(home)}
    server = DagTestServer(home)
    try:
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        _SERVERS[home] = server
        yield home
    finally:
        _SERVERS.pop(home, None)
        server.close()
        shutil.rmtree(home, ignore_errors=True)


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }


def run_dag_test(
    home: Path,
    settings: object,
    asl_path: Path,
    params: dict[str, object],
    timeout: float,
    log: Path | None = None,
) -> dict[str, Any]:
    """Write a DAG file built from ``asl_path`` into the Airflow home, run `dag.test()` on it in
    a process of its own pointed at ``settings`` (forked from the home's :class:`DagTestServer`),
    and return its task states (dag_test_server.run_dag)."""
    import uuid

    dag_id = f"dag_{uuid.uuid4().hex[:8]}"
    dag_file = home / "dags" / f"{dag_id}.py"
    dag_file.write_text(
        "# airflow DAG under test\n"
        "from pathlib import Path\n"
        "from pipeline.dag_builder import build_pipeline_dag\n"
        "from pipeline.steps import STEPS\n"
        "from tests.dags.steps_for_tests import TEST_STEPS\n"
        f"dag = build_pipeline_dag({dag_id!r}, Path({str(asl_path)!r}), "
        "steps={**STEPS, **TEST_STEPS})\n"
    )
    # the settings reach the task the way they reach Airflow's: through Settings.to_env()
    env = {**os.environ, **airflow_env(home), **settings.to_env()}  # type: ignore[attr-defined]
    server = _SERVERS.get(home) or DagTestServer(home)
    try:
        return server.run(dag_file, params, env, timeout, log)
    finally:
        if home not in _SERVERS:
            server.close()


class DagTestServer:
    """dag_test_server.py for one Airflow home: each `dag.test()` run in a process of its own,
    forked from a process that imported Airflow and the pipeline's libraries once (instead of a
    fresh interpreter importing them for every run). One run at a time."""

    def __init__(self, home: Path) -> None:
        import queue
        import threading

        self.home = home
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "dag_test_server.py")],
            env={**os.environ, **airflow_env(home)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(home / "dag-test-server.log", "w"),  # noqa: SIM115 - the process's
            text=True,
        )
        self.ready = False
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="dag-test-server").start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("GONE")

    def _next(self, deadline: float) -> str:
        import queue
        import time

        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError from None

    def run(
        self,
        dag_file: Path,
        params: dict[str, object],
        env: dict[str, str],
        timeout: float,
        log: Path | None = None,
    ) -> dict[str, Any]:
        """Run ``dag_file``'s DAG with ``params`` in ``env``; its output goes to ``log`` (or
        into the Airflow home); the result :func:`dag_test_server.run_dag` returns."""
        import json
        import signal
        import time

        output = log or self.home / f"{dag_file.stem}.log"
        output.parent.mkdir(parents=True, exist_ok=True)
        result = self.home / f"{dag_file.stem}.result.json"
        request = {
            "dag_file": str(dag_file),
            "params": params,
            "env": env,
            "log": str(output),
            "result": str(result),
        }
        with self.lock:
            deadline = time.monotonic() + timeout
            assert self.process.stdin is not None
            if not self.ready:  # the first run waits for the imports
                ready = self._next(deadline)
                assert ready == "READY", f"{ready}; see {self.home / 'dag-test-server.log'}"
                self.ready = True
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            started = self._next(deadline)
            assert started.startswith("PID "), started
            try:
                ended = self._next(deadline)
            except BaseException as error:  # past the timeout, or the test itself interrupted:
                # the run is killed and its EXIT read, so that the next run reads its own answers
                os.kill(int(started.removeprefix("PID ")), signal.SIGKILL)
                self._next(time.monotonic() + 60)
                if isinstance(error, TimeoutError):
                    late = f"dag.test() of {dag_file} ran past {timeout:.0f}s"
                    raise TimeoutError(late) from None
                raise
        text = output.read_text(errors="replace")
        assert ended == "EXIT 0" and result.exists(), f"{ended}: {text[-4000:]}"
        return dict(json.loads(result.read_text()))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_SERVERS: dict[Path, DagTestServer] = {}
