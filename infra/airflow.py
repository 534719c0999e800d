"""Airflow 3 as a managed service (`airflow standalone`), and a small client for its REST API.

Standalone runs the scheduler, DAG processor, API server and triggerer on SQLite with the
LocalExecutor. Its home lives under the state directory, so the generated admin password is
stored outside the repository; it is printed once, when Airflow first creates it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from infra.services import ManagedService, ServiceSpec, free_port
from riskstream.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"
ADMIN_USER = "admin"


class AirflowError(RuntimeError):
    """Talking to Airflow failed; the message says what and where to look."""


def airflow_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def password_file(settings: Settings) -> Path:
    return airflow_home(settings) / "simple_auth_manager_passwords.json.generated"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for Airflow and its tasks: Airflow's own settings plus ours, made explicit."""
    url = urlparse(settings.airflow_url)
    host, port = url.hostname or "127.0.0.1", url.port or 8080
    env = {
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "3",  # 2 cores: three trainings side by side at most
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://{host}:{port}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        # loopback only: the health check's host is a setting (by default every interface);
        # the log servers' host is not (Airflow 3.3 binds them to every interface), so the airflow
        # shim below starts the scheduler and triggerer with --skip-serve-logs: the API server
        # reads task logs from the local files, on this same machine.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "NO_PROXY": "127.0.0.1,localhost",
        # ours, so every task builds the same Settings as the command that started Airflow
        **settings.to_env(),
    }
    return env


def airflow_spec(settings: Settings) -> ServiceSpec:
    from infra.services import ServiceSpec as Spec

    url = urlparse(settings.airflow_url)
    venv_bin = Path(sys.executable).parent
    shim_bin = airflow_shim(settings, venv_bin / "airflow")
    return Spec(
        name="airflow",
        argv=[str(venv_bin / "airflow"), "standalone"],
        host=url.hostname or "127.0.0.1",
        port=url.port or 8080,
        health_path="/api/v2/monitor/health",
        health_check=_all_healthy,
        # standalone starts its parts as `airflow <part>`: our shim, then our venv's bin, come
        # first on PATH
        env={
            **airflow_env(settings),
            # the scheduler's health check listens on a fixed port (8974) by default, so a
            # second stack on the machine (a test's, a benchmark's) could not bind it
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "PATH": os.pathsep.join([str(shim_bin), str(venv_bin), os.environ.get("PATH", "")]),
        },
        cwd=REPO_ROOT,
        start_timeout=240,
        stop_signal=signal.SIGINT,  # standalone shuts its parts down on Ctrl-C, not on SIGTERM
    )


SHIM = """#!/bin/sh
# Written by riskstream: start the scheduler and triggerer without their log servers, which
# Airflow binds to every interface whatever its settings say.
case "$1" in
  scheduler|triggerer) exec "{real}" "$@" --skip-serve-logs ;;
esac
exec "{real}" "$@"
"""


def airflow_shim(settings: Settings, real: Path) -> Path:
    """A directory holding an ``airflow`` wrapper that standalone finds first on PATH."""
    directory = airflow_home(settings) / "bin"
    path = directory / "airflow"
    text = SHIM.format(real=real)
    if not path.exists() or path.read_text() != text:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return directory


def _all_healthy(body: bytes) -> bool:
    try:
        health = json.loads(body)
    except ValueError:
        return False
    parts = ("metadatabase", "scheduler", "dag_processor")
    return all(health.get(p, {}).get("status") == "healthy" for p in parts)


def airflow_service(settings: Settings) -> ManagedService:
    return ManagedService(airflow_spec(settings), settings.state_dir)


def start_airflow(settings: Settings) -> ManagedService:
    """Start Airflow (idempotent) and print the admin login once, when it is first generated."""
    service = airflow_service(settings)
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    service.up()
    password = admin_password(settings)
    shown = airflow_home(settings) / ".login-shown"
    if password and not shown.exists():
        shown.touch()
        print(  # noqa: T201 - shown to the user once, on purpose
            f"Airflow login: {ADMIN_USER} / {password}\n"
            f"  (generated by Airflow, stored in {password_file(settings)}; not printed again)"
        )
    return service


def admin_password(settings: Settings) -> str | None:
    try:
        users = json.loads(password_file(settings).read_text())
    except (OSError, ValueError):
        return None
    return users.get(ADMIN_USER)


@dataclass
class AirflowClient:
    """Just enough of Airflow's REST API (v2) to trigger and follow a DAG run."""

    base_url: str
    username: str
    password: str
    timeout: float = 30.0

    def __post_init__(self) -> None:
        import httpx

        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        self._token: str | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> AirflowClient:
        password = admin_password(settings)
        if password is None:
            raise AirflowError(
                f"no Airflow admin password in {password_file(settings)}; start Airflow with "
                "`riskstream airflow up`"
            )
        return cls(settings.airflow_url, ADMIN_USER, password)

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = self._http.post(
                "/auth/token", json={"username": self.username, "password": self.password}
            )
            if response.status_code >= 400:
                raise AirflowError(
                    f"Airflow login failed ({response.status_code}): {response.text}"
                )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, headers=self._headers(), **kwargs)
        if response.status_code == 401:  # token expired: log in again once
            self._token = None
            response = self._http.request(method, path, headers=self._headers(), **kwargs)
        if response.status_code >= 400:
            raise AirflowError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed the DAG; fail on an import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self._call("GET", "/api/v2/importErrors").get("import_errors", [])
            if errors:
                details = "; ".join(f"{e['filename']}: {e['stack_trace'][-300:]}" for e in errors)
                raise AirflowError(f"Airflow could not import the DAGs: {details}")
            try:
                return dict(self._call("GET", f"/api/v2/dags/{dag_id}"))
            except AirflowError:
                time.sleep(2)
        raise AirflowError(f"DAG {dag_id} did not appear in Airflow within {timeout:.0f}s")

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        run = self._call(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": dict(conf)},
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        data = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in data.get("task_instances", [])}

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        try:
            entry = self._call(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                "/xcomEntries/return_value",
                params={"deserialize": "true"},
            )
        except AirflowError:
            return None
        value = entry.get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                try:
                    import ast

                    return ast.literal_eval(value)
                except (ValueError, SyntaxError):
                    return value
        return value


def task_log_path(settings: Settings, dag_id: str, run_id: str, task_id: str, attempt: int) -> Path:
    return (
        airflow_home(settings)
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={task_id}"
        / f"attempt={max(attempt, 1)}.log"
    )
