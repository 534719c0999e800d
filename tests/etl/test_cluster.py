"""Both ETL jobs on a real Spark standalone cluster (master + one worker from the installed pyspark,
on 127.0.0.1) against the local cloud: the same outputs as local mode, every socket on loopback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from benchmarks import cluster_parity as parity
from infra.provision import provision
from infra.services import process_tree
from infra.spark_cluster import QUICK_JIT, ClusterShape, start_cluster, stop_cluster
from riskstream.settings import Settings
from tests.sockets import Listener, listeners

ACCOUNTS = 30  # tiny: the point is where the work runs, not how much of it there is


@pytest.mark.integration
def test_both_jobs_on_a_standalone_cluster_equal_local_mode(
    spark: SparkSession, cloud_settings: Settings, tmp_path: Path
) -> None:
    lines = parity.portfolio_lines(ACCOUNTS)
    local = cloud_settings.with_overrides(prefix="tclocal", state_dir=tmp_path / "local")
    remote = cloud_settings.with_overrides(prefix="tcluster", state_dir=tmp_path / "cluster")
    for settings in (local, remote):
        provision(settings)
        parity.land(settings, lines)

    # The cluster starts (two JVMs) while the local run works, in this process's session.
    shape = ClusterShape(cores=1, memory="1g", quick_jit=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(start_cluster, tmp_path / "spark", shape)
        try:
            local_reports = parity.run_jobs(local)
        except BaseException:
            stop_cluster(starting.result())
            raise
        cluster = starting.result()
    seen: list[Listener] = []

    def watch(driver: int | None = None) -> None:
        pids = {*cluster.pids(), *([driver] if driver else [])}
        for pid in list(pids):
            pids |= set(process_tree(pid))  # the driver's JVM, the worker's executors
        seen.extend(listeners(pids))

    try:
        assert cluster.master_url.startswith("spark://127.0.0.1:")
        cluster_reports = parity.run_jobs_on(
            remote,
            cluster.master_url,
            watch=watch,
            log=tmp_path / "cluster-jobs.log",
            env=QUICK_JIT,  # the driver too: seconds of work, not hours
        )
        watch()
    finally:
        stop_cluster(cluster)

    assert seen, "no listening socket seen: the cluster's processes were not found"
    assert [s.line() for s in seen if not s.loopback] == []
    # Both jobs ran on the cluster, not in a local driver that ignored the setting.
    for report in cluster_reports.values():
        assert report["spark_master"] == cluster.master_url
    assert parity.agreed(cluster_reports) == parity.agreed(local_reports)
    r2c = local_reports["raw_to_curated"]
    assert r2c["quarantined"] == {"bad_json": 1}
    assert r2c["duplicates_removed"] == 1
    assert local_reports["curated_to_features"]["rows_out"] > 0

    local_rows, cluster_rows = parity.outputs(spark, local), parity.outputs(spark, remote)
    assert parity.differences(local_rows, cluster_rows) == []
    assert all(local_rows[t] for t in ("statement", "payment", "features", "quarantine"))
