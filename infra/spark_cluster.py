"""A Spark standalone cluster on this machine: one master and one worker from the installed pyspark.

The same classes a real standalone cluster runs (``org.apache.spark.deploy.master.Master`` and
``...worker.Worker``, through pyspark's bundled ``bin/spark-class``), nothing downloaded. Every
socket is on the loopback interface: ``--host 127.0.0.1`` for the RPC endpoints, and
``SPARK_LOCAL_IP=127.0.0.1`` for the web UIs (they bind that address, or every interface without
it) and for the executors the worker starts. The master's and the worker's UIs listen on free
ports: the master's ``/json/`` is how we tell that the worker has registered.

Used by the cluster test (tests/etl/test_cluster.py) and benchmark (benchmarks/bench_cluster.py):
the ETL jobs run on it with ``RISKSTREAM_SPARK_MASTER=spark://127.0.0.1:<port>``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from infra.services import ManagedService, ServiceError, ServiceSpec, free_port

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
# The quick JIT compiler alone (C1), as a local driver that lives for one job has it
# (etl.spark.LOCAL_JIT): on the test's few seconds of work per stage, HotSpot's optimizing
# compiler (C2) spent more than it saved; both ETL jobs on the one-core test cluster took 204 s
# with it and 99 s without (same machine, same load). Set in the environment, so the executors
# a worker starts inherit it; explicit -XX options given by the application still win.
QUICK_JIT = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1"}
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class ClusterShape:
    """How big the worker is: a test wants the smallest cluster that still runs executors."""

    cores: int = 1
    memory: str = "1g"  # what the worker offers its executors
    daemon_memory: str = "256m"  # the master's and the worker's own JVM heap
    # Short jobs on a small cluster (a test's): the master, the worker and every executor it
    # starts on the quick JIT compiler alone (:data:`QUICK_JIT`). Off, the JVMs' default.
    quick_jit: bool = False


@dataclass(frozen=True)
class LocalCluster:
    """A running cluster: the URL to give ``RISKSTREAM_SPARK_MASTER``, and its two services."""

    master_url: str
    master_ui: str
    master: ManagedService
    worker: ManagedService

    def pids(self) -> list[int]:
        """The master's and the worker's process ids (their executors are children)."""
        return [s.status().pid for s in (self.master, self.worker) if s.status().pid]


def spark_home() -> Path:
    """The installed pyspark package: it carries ``bin/spark-class`` and the Spark jars."""
    import importlib.util

    found = importlib.util.find_spec("pyspark")
    if found is None or found.origin is None:
        raise ServiceError("pyspark is not installed in this environment; run `make setup`")
    return Path(found.origin).parent


def _env(home: Path, work: Path, shape: ClusterShape) -> dict[str, str]:
    return {
        **(QUICK_JIT if shape.quick_jit else {}),
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOCAL_HOSTNAME": HOST,
        "SPARK_DAEMON_MEMORY": shape.daemon_memory,
        # No spark-defaults.conf or spark-env.sh of the user's: this cluster is described here.
        "SPARK_CONF_DIR": str(work / "conf"),
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_WORKER_DIR": str(work / "work"),
        "SPARK_LOCAL_DIRS": str(work / "tmp"),
        # Executors run Python (if ever) on this interpreter unless the driver says otherwise.
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
    }


def _daemon_spec(
    name: str, argv: list[str], ui_port: int, ready: bytes, env: dict[str, str]
) -> ServiceSpec:
    """A Spark daemon on 127.0.0.1, healthy when its UI's JSON holds ``ready``."""
    return ServiceSpec(
        name=name,
        argv=argv,
        host=HOST,
        port=ui_port,
        health_path="/json/",
        health_check=lambda body: ready in body,
        env=env,
        start_timeout=90,
    )


def master_spec(
    home: Path, work: Path, port: int, ui_port: int, shape: ClusterShape
) -> ServiceSpec:
    """The master on 127.0.0.1:``port``; healthy when its UI's JSON answers."""
    argv = [str(home / "bin" / "spark-class"), MASTER_CLASS]
    argv += ["--host", HOST, "--port", str(port), "--webui-port", str(ui_port)]
    return _daemon_spec("spark-master", argv, ui_port, b'"status"', _env(home, work, shape))


def worker_spec(
    home: Path, work: Path, master_url: str, ui_port: int, shape: ClusterShape
) -> ServiceSpec:
    """One worker of ``shape`` registered with ``master_url``; healthy when its UI answers."""
    argv = [str(home / "bin" / "spark-class"), WORKER_CLASS, master_url]
    argv += ["--host", HOST, "--webui-port", str(ui_port)]
    argv += ["--cores", str(shape.cores), "--memory", shape.memory]
    argv += ["--work-dir", str(work / "work")]
    return _daemon_spec("spark-worker", argv, ui_port, b'"cores"', _env(home, work, shape))


def alive_workers(master_ui: str) -> int:
    """How many workers the master counts as alive (0 when its UI does not answer)."""
    try:
        with urllib.request.urlopen(master_ui + "/json/", timeout=5) as response:
            info = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return 0
    return sum(1 for w in info.get("workers", []) if w.get("state") == "ALIVE")


def start_cluster(state_dir: Path, shape: ClusterShape = ClusterShape()) -> LocalCluster:
    """Start a master and one worker with state under ``state_dir``; wait until the worker has
    registered. Raises :class:`ServiceError` (naming the log to read) when either fails."""
    home = spark_home()
    work = Path(state_dir) / "spark-cluster"
    for sub in ("conf", "logs", "work", "tmp"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    port, ui_port = free_port(), free_port()
    master = ManagedService(master_spec(home, work, port, ui_port, shape), state_dir)
    master_url = f"spark://{HOST}:{port}"
    master.up()
    worker = ManagedService(worker_spec(home, work, master_url, free_port(), shape), state_dir)
    cluster = LocalCluster(master_url, master.spec.url, master, worker)
    try:
        worker.up()
        deadline = time.monotonic() + 60
        while alive_workers(cluster.master_ui) < 1:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the Spark worker did not register with {master_url} within 60 s; see "
                    f"{worker.log_file} and {master.log_file}"
                )
            time.sleep(0.2)
    except BaseException:
        stop_cluster(cluster)
        raise
    logger.info("Spark standalone cluster up at %s (UI %s)", master_url, cluster.master_ui)
    return cluster


def stop_cluster(cluster: LocalCluster) -> None:
    """Stop the worker (and its executors), then the master."""
    for service in (cluster.worker, cluster.master):
        with suppress(ServiceError):
            service.down()


@contextmanager
def local_cluster(state_dir: Path, shape: ClusterShape = ClusterShape()) -> Iterator[LocalCluster]:
    """A :func:`start_cluster` cluster for the ``with`` block, stopped after it."""
    cluster = start_cluster(state_dir, shape)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
