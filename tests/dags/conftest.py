"""Airflow reads its configuration when first imported: give the test session a private home."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="rs-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

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


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }
