"""The warm Spark session: a real session server on loopback runs the DAG's Spark jobs in turn."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl import tasks
from etl.session import SessionJobError, submit
from etl.session_process import session_address, session_service
from etl.session_protocol import FINGERPRINT_HEADER, TOKEN_HEADER, settings_fingerprint, token_file
from etl.warmup import WARMUP_ACCOUNTS
from infra.services import AddressError, ManagedService, process_tree
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.conftest import running_on_a_free_port
from tests.etl.helpers import PORTFOLIO, small_history, upload_by_day
from tests.sockets import listeners

RUN_DATE = "2026-01-15"


def _session(provisioned: Settings, warm_up: bool) -> Iterator[tuple[Settings, ManagedService]]:
    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = provisioned.with_overrides(spark_session_url=f"http://127.0.0.1:{port}")
        service = session_service(settings, warm_up=warm_up)
        return settings, service

    with running_on_a_free_port(configure) as running:
        yield running


@pytest.fixture
def session(provisioned: Settings) -> Iterator[tuple[Settings, ManagedService]]:
    """A session that serves at once (no warm-up run)."""
    yield from _session(provisioned, warm_up=False)


@pytest.fixture
def warm_session(provisioned: Settings) -> Iterator[tuple[Settings, ManagedService]]:
    """A session as `riskstream run` starts it: it warms itself up first."""
    yield from _session(provisioned, warm_up=True)


def _post(settings: Settings, job: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{settings.spark_session_url}/jobs/{job}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.integration
def test_the_dag_jobs_run_in_turn_on_one_warm_session(
    warm_session: tuple[Settings, ManagedService], caplog: pytest.LogCaptureFixture
) -> None:
    settings, service = warm_session
    status = service.status()
    assert status.state == "running" and status.pid is not None
    found = listeners(process_tree(status.pid, status.pid))
    assert session_address(settings)[1] in {x.port for x in found}
    assert [x.line() for x in found if not x.loopback] == []  # the JVM's ports too
    mode = stat.S_IMODE(token_file(settings).stat().st_mode)
    assert mode == 0o600, oct(mode)

    s3 = make_client(settings, "s3")
    upload_by_day(s3, settings.bucket("raw"), small_history())

    with caplog.at_level(logging.INFO):
        curated = tasks.raw_to_curated(settings, RUN_DATE)
    assert curated["balanced"] is True and curated["rows_in"] == len(small_history())
    # the job's own log lines come back to the caller's log
    assert any("rows in" in r.getMessage() for r in caplog.records if r.name.startswith("etl"))
    features = tasks.curated_to_features(settings.for_portfolio(PORTFOLIO), RUN_DATE)
    assert (features["rows_out"], features["obs_dates"]) == (3, ["2005-10-01"])
    first, second = curated["spark_session"], features["spark_session"]
    assert first["app_id"] == second["app_id"]  # one JVM, one Spark application
    assert (first["job"], second["job"]) == (1, 2)

    # The job's error reaches the caller whole, and the session goes on serving.
    with pytest.raises(SessionJobError, match="obs_dates"):
        tasks.curated_to_features(
            settings.for_portfolio(PORTFOLIO), RUN_DATE, obs_dates=["2005-13-01"]
        )
    with urllib.request.urlopen(f"{settings.spark_session_url}/health", timeout=10) as answer:
        health = json.loads(answer.read())
    assert (health["jobs_served"], health["app_id"]) == (3, first["app_id"])
    # The warm-up ran first (the first job waited for it) and is not counted as a job served.
    warm = health["warm_up"]
    assert warm["state"] == "done", warm
    # every built-in account has its full history at each of the panel's dates
    assert warm["obs_dates"] > 1 and warm["quarantined"] == 2
    assert warm["features"] == WARMUP_ACCOUNTS * warm["obs_dates"]


@pytest.mark.integration
def test_the_session_refuses_strangers_and_other_settings(
    session: tuple[Settings, ManagedService],
) -> None:
    settings, _ = session
    token = token_file(settings).read_text().strip()
    ours = settings_fingerprint(settings)
    good = {TOKEN_HEADER: token, FINGERPRINT_HEADER: ours}
    assert _post(settings, "raw_to_curated", b"{}", {FINGERPRINT_HEADER: ours})[0] == 401
    code, body = _post(settings, "raw_to_curated", b"{}", {**good, FINGERPRINT_HEADER: "x"})
    assert code == 409 and ours in body["error"]
    code, body = _post(settings, "no_such_job", b"{}", good)
    assert code == 404 and "raw_to_curated" in body["error"]
    code, body = _post(settings, "raw_to_curated", b"{}", good)  # run_date is required
    assert code == 400 and "run_date" in body["error"]
    code, body = _post(settings, "raw_to_curated", b"[1]", good)
    assert code == 400 and "JSON object" in body["error"]
    # Settings other than the session's: the caller is told no, and runs the job itself.
    other = settings.with_overrides(prefix=f"{settings.prefix}x")
    assert submit(other, "raw_to_curated", {"run_date": RUN_DATE}) is None


@pytest.mark.integration
def test_a_session_whose_jvm_died_says_so_and_the_jobs_run_elsewhere(
    session: tuple[Settings, ManagedService],
) -> None:
    settings, service = session
    status = service.status()
    assert status.pid is not None
    java = [
        pid
        for pid in process_tree(status.pid, status.pid)
        if Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    ]
    assert len(java) == 1, java
    os.kill(java[0], signal.SIGKILL)
    deadline = time.monotonic() + 60  # py4j notices the lost gateway at its next call
    while time.monotonic() < deadline and service.healthy():
        time.sleep(0.5)
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"{settings.spark_session_url}/health", timeout=10)
    assert answer.value.code == 503
    assert "riskstream spark down" in json.loads(answer.value.read())["error"]
    assert submit(settings, "raw_to_curated", {"run_date": RUN_DATE}) is None


@pytest.mark.unit
def test_no_token_means_no_session(tmp_path: Any) -> None:
    settings = Settings.from_mapping({"RISKSTREAM_STATE_DIR": str(tmp_path)})
    assert submit(settings, "raw_to_curated", {"run_date": RUN_DATE}) is None


@pytest.mark.unit
def test_a_stale_token_with_nothing_listening_means_no_session(tmp_path: Any) -> None:
    from infra.services import free_port

    settings = Settings.from_mapping(
        {
            "RISKSTREAM_STATE_DIR": str(tmp_path),
            "RISKSTREAM_SPARK_SESSION_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    token_file(settings).parent.mkdir(parents=True)
    token_file(settings).write_text("left by a session that was killed")
    assert submit(settings, "raw_to_curated", {"run_date": RUN_DATE}) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.7:8998", "https://127.0.0.1:8998", "http://127.0.0.1", "http://10.1.2.3:1"],
)
def test_the_session_serves_on_loopback_only(url: str) -> None:
    settings = Settings.from_mapping({"RISKSTREAM_SPARK_SESSION_URL": url})
    with pytest.raises(AddressError, match="RISKSTREAM_SPARK_SESSION_URL"):
        session_address(settings)
