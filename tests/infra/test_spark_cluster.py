"""The local Spark standalone cluster's commands: everything on loopback, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.spark_cluster import (
    HOST,
    MASTER_CLASS,
    QUICK_JIT,
    WORKER_CLASS,
    ClusterShape,
    master_spec,
    spark_home,
    worker_spec,
)

pytestmark = pytest.mark.unit


def test_the_installed_pyspark_carries_the_launcher_and_the_jars() -> None:
    home = spark_home()
    assert (home / "bin" / "spark-class").is_file()
    assert any((home / "jars").glob("spark-core_*.jar"))


def test_master_and_worker_bind_loopback_with_the_shape_asked_for(tmp_path: Path) -> None:
    home = tmp_path / "spark-home"
    shape = ClusterShape(cores=1, memory="512m", quick_jit=True)
    master = master_spec(home, tmp_path, 7100, 7101, shape)
    assert master.argv[:2] == [str(home / "bin" / "spark-class"), MASTER_CLASS]
    assert master.argv[2:] == ["--host", HOST, "--port", "7100", "--webui-port", "7101"]
    assert (master.host, master.port, master.health_path) == (HOST, 7101, "/json/")
    # The web UIs bind SPARK_LOCAL_IP (every interface without it); executors inherit it.
    assert master.env["SPARK_LOCAL_IP"] == HOST == "127.0.0.1"
    assert master.env["SPARK_CONF_DIR"] == str(tmp_path / "conf")  # no user spark-defaults
    assert master.env["JAVA_TOOL_OPTIONS"] == QUICK_JIT["JAVA_TOOL_OPTIONS"]

    worker = worker_spec(home, tmp_path, "spark://127.0.0.1:7100", 7102, shape)
    assert worker.argv[1:3] == [WORKER_CLASS, "spark://127.0.0.1:7100"]
    assert worker.argv[3:] == [
        "--host",
        HOST,
        "--webui-port",
        "7102",
        "--cores",
        "1",
        "--memory",
        "512m",
        "--work-dir",
        str(tmp_path / "work"),
    ]
    plain = worker_spec(home, tmp_path, "spark://127.0.0.1:7100", 7102, ClusterShape())
    assert "JAVA_TOOL_OPTIONS" not in plain.env
