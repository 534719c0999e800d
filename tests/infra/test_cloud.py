"""The embedded cloud as a managed service: up, status, down, port in use, stale pid file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cloud import cloud_service
from infra.services import ServiceError, _group_alive, free_port
from riskstream.settings import Settings

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, port: int) -> Settings:
    return Settings.from_mapping(
        {"RISKSTREAM_CLOUD_PORT": str(port), "RISKSTREAM_STATE_DIR": str(tmp_path)}
    )


def test_up_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    service = cloud_service(_settings(tmp_path, free_port()))
    assert service.status().state == "stopped"
    status = service.up()
    try:
        assert status.state == "running"
        assert status.pid is not None
        assert service.pid_file.is_file()
        assert service.log_file.is_file()
        # a second `up` finds it running and starts nothing new
        assert service.up().pid == status.pid
    finally:
        assert service.down() is True
    assert not _group_alive(status.pid)
    assert not service.pid_file.exists()
    assert service.status().state == "stopped"
    assert service.down() is False


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        service = cloud_service(_settings(tmp_path, port))
        with pytest.raises(ServiceError, match=f"port {port} on 127.0.0.1 is already in use"):
            service.up()
    assert not service.pid_file.exists()


def test_stale_pid_file_is_reported_and_cleaned(tmp_path: Path) -> None:
    # a pid that surely is not running: a child we started and reaped
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    service = cloud_service(_settings(tmp_path, free_port()))
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.pid_file.write_text(json.dumps({"pid": dead.pid, "pgid": dead.pid}))
    assert service.status().state == "stale"
    status = service.up()
    try:
        assert status.state == "running"
        assert status.pid != dead.pid
    finally:
        service.down()


def test_garbage_pid_file_counts_as_stale(tmp_path: Path) -> None:
    service = cloud_service(_settings(tmp_path, free_port()))
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.pid_file.write_text("not json")
    assert service.status().state == "stale"


def _cli(tmp_path: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RISKSTREAM_CLOUD_PORT": str(port),
        "RISKSTREAM_STATE_DIR": str(tmp_path),
        "RISKSTREAM_PREFIX": "clitest",
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("riskstream")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_cli_cloud_lifecycle_and_provision_twice(tmp_path: Path) -> None:
    port = free_port()
    try:
        up = _cli(tmp_path, port, "cloud", "up")
        assert up.returncode == 0, up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout
        status = _cli(tmp_path, port, "cloud", "status")
        assert status.returncode == 0
        assert "running" in status.stdout
        first = _cli(tmp_path, port, "provision")
        assert first.returncode == 0, first.stderr
        # 6 buckets, 2 streams (events, risk events), 2 tables, the database, the steps queue
        assert "12 created" in first.stdout
        second = _cli(tmp_path, port, "provision")
        assert "nothing to do: all 12 resources already exist" in second.stdout
    finally:
        down = _cli(tmp_path, port, "cloud", "down")
    assert down.returncode == 0
    assert "stopped" in down.stdout
    after = _cli(tmp_path, port, "cloud", "status")
    assert after.returncode == 3
    assert "stopped" in after.stdout


def test_cli_port_in_use_gives_a_message_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        result = _cli(tmp_path, blocker.getsockname()[1], "cloud", "up")
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_provision_without_cloud_says_how_to_start_it(tmp_path: Path) -> None:
    result = _cli(tmp_path, free_port(), "provision")
    assert result.returncode == 1
    assert "riskstream cloud up" in result.stderr
    assert "Traceback" not in result.stderr
