"""Both ETL jobs on a local Spark standalone cluster (a master and one worker from the installed
pyspark, on 127.0.0.1) against local mode, over the same events on the embedded cloud: are the
outputs equal (``etl.cluster.equal``), and what does the cluster cost in wall time beside local mode
in the same run (``etl.cluster.seconds``)? The flow is the cluster test's
(tests/etl/test_cluster.py, benchmarks/cluster_parity.py).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cluster_parity as parity
from common import Row, cli, local_cloud, ratio_row, write_rows

from etl.spark import build_spark
from infra.provision import provision
from infra.spark_cluster import QUICK_JIT, ClusterShape, local_cluster


def main() -> None:
    args = cli(__doc__ or "")
    accounts = 30 if args.quick else 200
    lines = parity.portfolio_lines(accounts)
    with local_cloud("bcl") as settings, tempfile.TemporaryDirectory() as tmp:
        local = settings.with_overrides(prefix=settings.prefix + "l", state_dir=Path(tmp) / "l")
        remote = settings.with_overrides(prefix=settings.prefix + "c", state_dir=Path(tmp) / "c")
        for each in (local, remote):
            provision(each)
            parity.land(each, lines)
        # Local mode the way a DAG task without the warm session runs it: a fresh process.
        started = time.perf_counter()
        local_reports = parity.run_jobs_on(local, local.spark_master, env=QUICK_JIT)
        local_seconds = time.perf_counter() - started
        started = time.perf_counter()
        shape = ClusterShape(cores=1, memory="1g", quick_jit=True)
        with local_cluster(Path(tmp) / "spark", shape) as cluster:
            up_seconds = time.perf_counter() - started
            started = time.perf_counter()
            cluster_reports = parity.run_jobs_on(remote, cluster.master_url, env=QUICK_JIT)
            cluster_seconds = time.perf_counter() - started
        spark = build_spark(settings, "bench-cluster-compare")
        problems = parity.differences(parity.outputs(spark, local), parity.outputs(spark, remote))
        if parity.agreed(local_reports) != parity.agreed(cluster_reports):
            problems.append("the jobs' reports differ")
        spark.stop()
    equal = not problems
    rows = [
        Row(
            "etl",
            f"both ETL jobs' outputs on a local standalone cluster (1 worker, 1 core) equal local "
            f"mode ({len(lines):,} events, {accounts} accounts)",
            float(equal),
            "yes=1",
            reference="the same jobs in local mode on the same events",
            target="yes",
            met=equal,
            note="; ".join(problems) or "curated tables, quarantine, features and reports equal",
            id="etl.cluster.equal",
        ),
        ratio_row(
            "etl",
            "both ETL jobs on the local standalone cluster, fresh driver (information)",
            cluster_seconds,
            "s",
            "the same jobs in local mode, fresh driver, same run",
            local_seconds,
            note=f"cluster start (master + worker registered) {up_seconds:.1f} s, apart",
            id="etl.cluster.seconds",
        ),
    ]
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
