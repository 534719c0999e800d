"""Only loopback: the whole stack, started on free ports, listens on 127.0.0.1 (or ::1) only."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.services import free_port, process_tree
from riskstream.settings import Settings
from tests.sockets import Listener, listeners, parse_proc_address

WAVE_ONE = ("cloud", "spark", "mlflow", "airflow")
HEALTH_PORT = "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "address", "port", "loopback"),
    [
        ("0100007F:1F90", "127.0.0.1", 8080, True),
        ("00000000:2259", "0.0.0.0", 8793, False),
        ("00000000000000000000000001000000:1F90", "::1", 8080, True),
        ("00000000000000000000000000000000:2259", "::", 8793, False),
        ("0000000000000000FFFF00000100007F:0050", "::ffff:7f00:1", 80, True),
    ],
)
def test_proc_addresses_are_read_right(raw: str, address: str, port: int, loopback: bool) -> None:
    assert parse_proc_address(raw) == (address, port)
    assert Listener(1, address, port).loopback is loopback


@pytest.mark.e2e
def test_the_whole_stack_listens_on_loopback_only(tmp_path: Path) -> None:
    from etl.session_process import session_service
    from infra.airflow import start_airflow
    from pipeline.stack import all_services

    settings = Settings.from_mapping(
        {
            "RISKSTREAM_STATE_DIR": str(tmp_path / "state"),
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "RISKSTREAM_PREFIX": "rsloop",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_API_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_DASHBOARD_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_SPARK_SESSION_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_LIVE_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_SFN_WORKER_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    services = all_services(settings)
    names = [s.spec.name for s in services]
    assert {"cloud", "spark", "mlflow", "airflow", "api", "dashboard", "live"} <= set(names), names
    # the warm session's socket is what is checked here, not its warm-up jobs (CPU a test
    # worker's neighbours want)
    services = [
        session_service(settings, warm_up=False) if s.spec.name == "spark" else s for s in services
    ]
    by_name = {s.spec.name: s for s in services}
    waves = [["cloud"], ["spark", "mlflow"], [n for n in names if n not in WAVE_ONE]]
    health_port = 0

    def start(name: str) -> None:
        nonlocal health_port
        if name == "airflow":
            service = start_airflow(settings)
            health_port = int(service.spec.env[HEALTH_PORT])
        else:
            if name == "mlflow":
                from infra.provision import provision

                provision(settings)  # MLflow's artifact bucket
            by_name[name].up()

    started = []
    try:
        # as `riskstream run` does: the cloud, then the services that wait on their own child
        # processes side by side (Spark, MLflow, Airflow), then the ones that read from Spark and
        # MLflow, while Airflow (the slowest to start, and read by none of them) still starts
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="start") as pool:
            airflow = None
            for wave in waves:
                for name, future in [(n, pool.submit(start, n)) for n in wave]:
                    future.result()
                    started.append(by_name[name])
                if airflow is None:  # the cloud answers
                    airflow = pool.submit(start, "airflow")
            assert airflow is not None
            airflow.result()
            started.append(by_name["airflow"])
        # the scheduler's helpers (its health check, would-be log servers) start after Airflow
        # answers: every listener is read until the health check listens, then for a few
        # seconds more (bounded: a minute in all)
        found: set[Listener] = set()
        settled: float | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (settled is None or time.monotonic() < settled):
            for service in started:
                status = service.status()
                assert status.state == "running", status.line()
                assert status.pid is not None
                found |= set(listeners(process_tree(status.pid, status.pid)))
            if settled is None and health_port in {x.port for x in found}:
                settled = time.monotonic() + 5
            time.sleep(0.5)
        ports = {x.port for x in found}
        assert settings.cloud_port in ports
        assert health_port in ports, "the scheduler's health check never listened"
        wide = [x.line() for x in found if not x.loopback]
        assert wide == [], f"listening beyond loopback: {wide}"
    finally:
        # each stops its own process tree: all at once
        with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="stop") as pool:
            list(pool.map(lambda service: service.down(), services))


@pytest.mark.integration
def test_a_listener_on_every_interface_is_caught(tmp_path: Path) -> None:
    """The check itself: a process listening on 0.0.0.0 is reported, one on 127.0.0.1 is not."""
    import subprocess
    import sys

    wide, narrow = free_port(), free_port()
    script = (
        "import socket, sys, time\n"
        "a = socket.socket(); a.bind(('0.0.0.0', int(sys.argv[1]))); a.listen()\n"
        "b = socket.socket(); b.bind(('127.0.0.1', int(sys.argv[2]))); b.listen()\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(wide), str(narrow)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        found = {x.port: x.loopback for x in listeners(process_tree(process.pid))}
        assert found == {wide: False, narrow: True}
    finally:
        process.kill()
        process.wait()


@pytest.mark.unit
def test_airflow_runs_its_health_check_on_loopback_and_no_log_servers(tmp_path: Path) -> None:
    from infra.airflow import airflow_spec

    settings = Settings.from_mapping({"RISKSTREAM_STATE_DIR": str(tmp_path)})
    spec = airflow_spec(settings)
    assert spec.env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST"] == "127.0.0.1"
    # on a port of its own, not Airflow's fixed default that a second stack could not bind
    assert spec.env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] != "8974"
    shim_dir = Path(spec.env["PATH"].split(":")[0])
    shim = (shim_dir / "airflow").read_text()
    assert "scheduler|triggerer" in shim and "--skip-serve-logs" in shim
