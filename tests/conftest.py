"""Shared fixtures: a real moto server over HTTP on a free port, and isolated settings per test.

Also the suite's rules, enforced here so that they hold on every run:
- property-based tests are reproducible (the ``riskstream`` Hypothesis profile: derandomized, no
  example database, no deadline);
- every test carries exactly one of the markers ``unit``, ``integration``, ``e2e`` (collection
  fails otherwise);
- a ``unit`` test starts no server and no JVM: it may not request a fixture that starts one
  (collection fails), and a child process still running when its body ends fails it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from infra.cloud import cloud_service
from infra.provision import provision
from infra.services import ManagedService, ServiceError, free_port, port_free
from riskstream.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"

# ---- reproducible property-based tests --------------------------------------------------------
# Derandomized: the same examples on every run and every machine, so CI fails only on a change.
# HYPOTHESIS_PROFILE=explore searches randomly (and keeps failures in .hypothesis/) when hunting.
hypothesis_settings.register_profile(
    "riskstream", derandomize=True, database=None, deadline=None, print_blob=True
)
hypothesis_settings.register_profile("explore", deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "riskstream"))

# ---- markers tell the truth -------------------------------------------------------------------
KINDS = ("unit", "integration", "e2e")
# Fixtures that start a server, a JVM or another long-lived process (and every fixture built on
# them, since pytest's fixture closure includes what they depend on).
PROCESS_FIXTURES = frozenset(
    {"cloud_settings", "mlflow_settings", "spark", "airflow_home", "localstack"}
)


def marker_problems(items: list[pytest.Item]) -> list[str]:
    """One line per test whose markers break the rules above (empty when all is well)."""
    problems = []
    for item in items:
        kinds = sorted({m.name for m in item.iter_markers()} & set(KINDS))
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            problems.append(f"{item.nodeid}: needs exactly one of {'/'.join(KINDS)} (has {found})")
        elif kinds == ["unit"]:
            started = sorted(PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())))
            if started:
                problems.append(
                    f"{item.nodeid}: marked unit but uses {', '.join(started)}, which starts a "
                    "server or a JVM; mark it integration"
                )
    return problems


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = marker_problems(items)
    if problems:
        raise pytest.UsageError(
            "test markers do not tell the truth (a unit test starts no server and no JVM):\n  "
            + "\n  ".join(problems)
        )
    items[:] = spark_tests_together(items)


def spark_tests_together(items: list[pytest.Item]) -> list[pytest.Item]:
    """The tests on the session's in-process Spark (the ``spark`` fixture) moved up to where the
    first of them stands, in their own order; every other test keeps its place. xdist's
    worksteal hands each worker a contiguous part of this order, so one worker starts that JVM
    and runs them all on its compiled code, instead of both workers paying a cold JVM (the same
    order on every worker: xdist requires it)."""
    on_spark = [item for item in items if "spark" in getattr(item, "fixturenames", ())]
    if not on_spark:
        return items
    first = items.index(on_spark[0])
    chosen = set(map(id, on_spark))
    rest = [item for item in items if id(item) not in chosen]
    return rest[:first] + on_spark + rest[first:]


_CHILDREN = pytest.StashKey[set[int]]()
# Worker pools that outlive a call by design (joblib's loky, multiprocessing's helpers)
WORKER_POOLS = ("loky", "joblib", "multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _child_processes() -> dict[int, str]:
    """Live child processes of this test process: pid -> command line."""
    try:
        import psutil
    except ImportError:  # the guard is a safety net; without psutil it stands aside
        return {}
    found = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = " ".join(child.cmdline())[:200]
        except psutil.Error:
            continue
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("unit") is not None:
        item.stash[_CHILDREN] = set(_child_processes())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a unit test's body (its fixtures still up): fail it if a process it started runs."""
    result = yield
    before = item.stash.get(_CHILDREN, None)
    if before is None:
        return result
    started = {
        pid: cmd
        for pid, cmd in _child_processes().items()
        if pid not in before and not any(pool in cmd for pool in WORKER_POOLS)
    }
    if started:
        raise AssertionError(
            f"unit test {item.nodeid} left processes running (a unit test starts no server and "
            f"no JVM; mark it integration): {started}"
        )
    return result


def up_on_a_free_port(
    start: Callable[[int], tuple[Settings, ManagedService]], attempts: int = 3
) -> tuple[Settings, ManagedService]:
    """``start(port)`` on a port free right now; again on another port when a process outside
    this session took that one between the choice and the bind (a shared machine runs several
    test sessions at once). A failure on a port nobody else holds is raised at once."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        try:
            return start(port)
        except ServiceError:
            if attempt == attempts or port_free("127.0.0.1", port):
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_on_a_free_port(
    configure: Callable[[int], tuple[Settings, ManagedService]],
) -> Iterator[tuple[Settings, ManagedService]]:
    """The service ``configure(port)`` describes, up on a free port (see
    :func:`up_on_a_free_port`) for the ``with`` block and down after it."""

    def start(port: int) -> tuple[Settings, ManagedService]:
        settings, service = configure(port)
        service.up()
        return settings, service

    settings, service = up_on_a_free_port(start)
    try:
        yield settings, service
    finally:
        service.down()


@contextmanager
def durable_cloud_on_a_free_port(
    state: Path, prefix: str, **environment: str
) -> Iterator[tuple[Settings, ManagedService]]:
    """A durable cloud of the caller's own (its state in ``state``, more settings in
    ``environment``) on a free port and provisioned, so a test may kill -9 it; down after."""

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = Settings.from_mapping(
            {
                "RISKSTREAM_TARGET": "embedded",
                "RISKSTREAM_CLOUD_PORT": str(port),
                "RISKSTREAM_STATE_DIR": str(state),
                "RISKSTREAM_PREFIX": prefix,
                **environment,
            }
        )
        return settings, cloud_service(settings)

    with running_on_a_free_port(configure) as (settings, service):
        provision(settings)
        yield settings, service


def stop_the_cloud(service: ManagedService, pid: int | None, how: str) -> None:
    """Stop a cloud as the durability tests do: ``kill -9`` of its process, or a clean stop."""
    if how == "kill -9":
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    else:
        service.down()


@pytest.fixture(scope="session")
def cloud_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a real moto server started for this test session on a free port."""
    state = tmp_path_factory.mktemp("cloud-state")

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = Settings.from_mapping(
            {
                "RISKSTREAM_TARGET": "embedded",
                "RISKSTREAM_CLOUD_PORT": str(port),
                "RISKSTREAM_STATE_DIR": str(state),
                "RISKSTREAM_PREFIX": "rstest",
            }
        )
        service = cloud_service(settings, ephemeral=True)
        return settings, service

    with running_on_a_free_port(configure) as (settings, _):
        yield settings


@pytest.fixture
def isolated_settings(cloud_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a prefix of their own, so each test gets fresh buckets, stream and tables."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return cloud_settings.with_overrides(prefix=prefix, state_dir=tmp_path / "state")


@pytest.fixture
def provisioned(isolated_settings: Settings) -> Settings:
    """Isolated settings with every resource created on the session's moto server."""
    provision(isolated_settings)
    return isolated_settings


@pytest.fixture(scope="session")
def mlflow_settings(cloud_settings: Settings) -> Iterator[Settings]:
    """``cloud_settings`` with a real MLflow server for this session on a free port.

    Backend store: SQLite in a temporary state dir; artifacts: the session's moto S3
    (``s3://rstest-artifacts/mlflow``), proxied by the server. ``mlflow_tracking_uri`` points at it.
    """
    from training.mlflow_process import mlflow_service

    provision(cloud_settings)  # the artifacts bucket must exist before the server writes to it

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = cloud_settings.with_overrides(
            mlflow_tracking_uri=f"http://127.0.0.1:{port}",
            state_dir=cloud_settings.state_dir / "mlflow-session",
        )
        service = mlflow_service(settings)
        return settings, service

    with running_on_a_free_port(configure) as (settings, _):
        yield settings
