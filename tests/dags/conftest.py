"""Airflow reads its configuration when first imported: give the test session a private home."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from riskstream.settings import Settings

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
    """A migrated SQLite metadata DB and an empty dags folder, for `dag.test()` runs."""
    home = Path(tempfile.mkdtemp(prefix="rs-airflow-run-"))
    (home / "dags").mkdir()
    env = {**os.environ, **airflow_env(home)}
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield home
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
    a process of its own pointed at ``settings``, and return its task states (run_dag_test.py)."""
    import json
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
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "run_dag_test.py"),
            str(dag_file),
            json.dumps(params),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-4000:] + result.stderr[-4000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


def run_pipeline_end_to_end(
    home: Path,
    base: Settings,
    tmp_path: Path,
    prefix: str,
    params: dict[str, object],
    log_name: str,
    succeeded: Iterable[str],
) -> tuple[Settings, dict[str, Any]]:
    """Run the pipeline's own DAG (from the real ASL) on fresh, provisioned settings derived from
    ``base``; assert the run and every task in ``succeeded`` succeeded. Returns the settings and
    the run's result; the whole output goes to tests/artifacts/``log_name``."""
    import uuid

    from infra.provision import provision
    from pipeline.asl import ASL_PATH

    settings = base.with_overrides(
        prefix=f"{prefix}{uuid.uuid4().hex[:8]}", state_dir=tmp_path / "state"
    )
    provision(settings)
    log = REPO / "tests" / "artifacts" / log_name
    out = run_dag_test(home, settings, ASL_PATH, params, timeout=1500, log=log)
    failed = {t: s for t, s in out["states"].items() if s not in ("success", "skipped")}
    assert out["run"] == "success", f"{failed}; the whole output is in {log}"
    for task in succeeded:
        assert out["states"][task] == "success", (task, out["states"])
    return settings, out
