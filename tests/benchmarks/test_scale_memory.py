"""The pure parts of the scale benchmark (benchmarks/scale_memory.py): size labels, which
service a process counts under, peaks per service and per phase, the phase table."""

from __future__ import annotations

import pytest

from benchmarks.scale_memory import (
    AIRFLOW_TASKS,
    CONSOLE,
    Peaks,
    events_of,
    owners_by_ancestry,
    phase_table,
    phase_windows,
    service_of,
    size_label,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("accounts", "label"), [(2_000, "1x"), (20_000, "10x"), (200_000, "100x"), (200, "0.1x")]
)
def test_sizes_are_named_by_their_multiple_of_the_default(accounts: int, label: str) -> None:
    assert size_label(accounts) == label


@pytest.mark.parametrize(
    ("owner", "cmdline", "service"),
    [
        (None, "python riskstream run --accounts 20", CONSOLE),
        ("cloud", "python -m infra.moto_server --port 1", "cloud"),
        ("airflow", "airflow scheduler", "airflow"),
        ("airflow", "airflow task runner: credit_risk_pipeline train_xgb", AIRFLOW_TASKS),
        ("airflow", "airflow task supervisor: [...]", AIRFLOW_TASKS),
        (None, "airflow worker -- LocalExecutor: 01a244ef", AIRFLOW_TASKS),
        (None, "/venv/bin/python /venv/bin/airflow dag-processor", "airflow"),
        ("api", "/venv/bin/python -m serving.api --port 1", "api"),
        ("spark", "java -cp ... org.apache.spark.deploy.SparkSubmit", "spark"),
    ],
)
def test_a_process_counts_under_its_service(owner: str | None, cmdline: str, service: str) -> None:
    assert service_of(owner, cmdline) == service


def test_peaks_per_service_at_once_and_per_window() -> None:
    peaks = Peaks()
    peaks.add(10.0, {"cloud": 100.0, "airflow": 300.0})
    peaks.add(11.0, {"cloud": 250.0, "airflow": 100.0})
    peaks.add(12.0, {"cloud": 50.0})
    assert peaks.by_service == {"cloud": 250.0, "airflow": 300.0}
    assert peaks.sum_of_peaks == 550.0
    assert peaks.total == 400.0  # the highest sum at one moment
    assert peaks.peak_between(10.5, 12.0) == 350.0
    assert peaks.peak_between(20.0, 30.0) is None


def test_phases_take_their_windows_from_the_run_and_from_airflow() -> None:
    timings = {
        "phases": [["local cloud", 5.0], ["  task produce_events", 60.0], ["  task score", 9.0]],
        "phase_started_at": {"local cloud": 1000.0},
        "task_times": {
            "produce_events": ["1970-01-01T00:20:00+00:00", "1970-01-01T00:21:00Z"],
            "score": ["1970-01-01T00:30:00Z", None],
        },
        "task_numbers": {"produce_events": {"sent": 170_000}},
    }
    assert phase_windows(timings) == [
        ("local cloud", 5.0, 1000.0, 1005.0),
        ("  task produce_events", 60.0, 1200.0, 1260.0),
        ("  task score", 9.0, 1800.0, 1809.0),
    ]
    assert events_of(timings) == 170_000
    assert events_of({}) is None
    peaks = Peaks()
    peaks.add(1002.0, {"cloud": 100.0})
    peaks.add(1230.0, {"cloud": 300.0, "airflow": 200.0})
    assert peaks.by_phase(timings) == [
        ("local cloud", 5.0, 100.0),
        ("  task produce_events", 60.0, 500.0),
        ("  task score", 9.0, None),
    ]
    assert peaks.services_by_phase(timings) == {
        "local cloud": {"cloud": 100.0},
        "task produce_events": {"cloud": 300.0, "airflow": 200.0},
        "task score": {},
    }


def test_the_phase_table_gives_seconds_per_million_events() -> None:
    table = phase_table(
        [("  task land_events", 34.0, 2048.0), ("provision", 1.0, None)], 1_700_000, 340.0
    )
    assert table.splitlines()[2] == "| task land_events | 34.0 | 20.0 | 2,048 |"
    assert table.splitlines()[3] == "| provision | 1.0 | 0.6 | - |"
    assert table.splitlines()[4] == "| **whole run** | 340.0 | 200.0 | |"


def test_a_process_is_owned_by_its_nearest_managed_ancestor() -> None:
    # the run (1) started the services airflow (10) and cloud (20); airflow's task (11) forked a
    # child (12) that the trees walked one by one once counted under the console; 99 is not ours
    parents = {1: 0, 2: 1, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20, 99: 0, 98: 99}
    roots = {1: None, 10: "airflow", 20: "cloud"}
    owners = owners_by_ancestry(parents, roots)
    assert owners == {
        1: None,
        2: None,
        10: "airflow",
        11: "airflow",
        12: "airflow",
        20: "cloud",
        21: "cloud",
    }
    assert owners_by_ancestry({5: 4, 4: 5}, {1: None}) == {}  # a cycle (pids reused) ends
