"""Both ETL jobs on a Spark standalone cluster and in local mode, same events: equal outputs?

Shared by the cluster test (tests/etl/test_cluster.py) and its benchmark row
(benchmarks/bench_cluster.py, ``etl.cluster.equal``). The cluster side runs the way a user points
the pipeline at a cluster: a fresh process whose settings come from the environment with
``RISKSTREAM_SPARK_MASTER=spark://...``, calling the same entry functions as the DAG's tasks
(:mod:`etl.tasks`). Run as a script (``--jobs PORTFOLIO``) it is that process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from riskstream import names  # noqa: E402
from riskstream.settings import Settings  # noqa: E402

RUN_DATE = "2026-01-15"
ARRIVAL = "dt=2026-01-15/hr=12"  # one fixed arrival hour: both runs land the same partition
PORTFOLIO = names.SOURCE_SYNTHETIC
# What each run's report must agree on (run ids, timings and locations differ by design).
R2C_KEYS = ("rows_in", "rows_out", "quarantined", "duplicates_removed", "partitions_processed")
C2F_KEYS = ("rows_out", "labels", "obs_dates")


def portfolio_lines(accounts: int, months: int = 6, seed: int = 7) -> list[bytes]:
    """A tiny synthetic portfolio's events, plus one line that is not JSON and one duplicate, so
    the quarantine and de-duplication paths run too."""
    from ingestion.synthetic import SyntheticConfig, simulate
    from riskstream.events import serialize

    portfolio = simulate(SyntheticConfig(accounts=accounts, months=months, seed=seed))
    lines = [serialize(e) for e in portfolio.events()]
    return [*lines, b"{not json", lines[0]]


def land(settings: Settings, lines: list[bytes]) -> None:
    """Land ``lines`` in the settings' raw bucket as one gzip JSON-lines object (as a flush of
    the landing consumer would)."""
    from riskstream.clients import make_client

    body = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    key = names.raw_event_key(ARRIVAL, "part-00000.jsonl.gz")
    make_client(settings, "s3").put_object(Bucket=settings.bucket("raw"), Key=key, Body=body)


def run_jobs(settings: Settings) -> dict[str, Any]:
    """Both jobs (raw -> curated, then the portfolio's features) for ``settings``, in this
    process: {"raw_to_curated": report, "curated_to_features": report}."""
    from etl import tasks

    return {
        "raw_to_curated": tasks.raw_to_curated(settings, RUN_DATE),
        "curated_to_features": tasks.curated_to_features(
            settings.for_portfolio(PORTFOLIO), RUN_DATE
        ),
    }


def run_jobs_on(
    settings: Settings,
    master: str,
    watch: Callable[[int], None] | None = None,
    timeout: float = 600,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`run_jobs` in a child process whose settings say ``RISKSTREAM_SPARK_MASTER=master``
    (the driver in that process, the executors wherever the master puts them). ``watch(pid)`` is
    called about twice a second while the child runs (the test checks sockets with it); the
    child's log goes to ``log`` when given; ``env`` adds to the child's environment."""
    child = settings.with_overrides(spark_master=master)
    env = {**os.environ, **(env or {}), **child.to_env()}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # The executors run no Python (the jobs have no UDF); if one ever does, it runs this one.
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--jobs"],
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"the ETL jobs on {master} did not finish in {timeout:.0f} s")
            if watch is not None:
                watch(process.pid)
            time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if log is not None:
        log.write_text(stderr)
    if process.returncode != 0:
        raise RuntimeError(
            f"the ETL jobs on {master} failed (exit {process.returncode}):\n{stderr[-4000:]}"
        )
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def agreed(reports: dict[str, Any]) -> dict[str, Any]:
    """The parts of both jobs' reports two runs over the same events must share."""
    r2c, c2f = reports["raw_to_curated"], reports["curated_to_features"]
    return {
        "raw_to_curated": {k: r2c[k] for k in R2C_KEYS},
        "curated_to_features": {k: c2f[k] for k in C2F_KEYS},
    }


def outputs(spark: Any, settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row both jobs wrote for ``settings`` (curated tables, the ETL quarantine, the
    portfolio's features), sorted, with the raw bucket's name taken out of ``source_file``."""
    from etl import layout, transforms
    from etl.jobs.common import storage_for
    from etl.spark import to_spark_uri

    storage = storage_for(settings, names.curated_location(settings))
    frames = {
        table: layout.read_table(
            spark,
            storage,
            names.curated_location(settings, table),
            transforms.curated_schema(table),
            layout.table_key(table),
        )
        for table in transforms.EVENT_TYPES
    }
    frames["quarantine"] = layout.read_table(
        spark,
        storage,
        names.etl_quarantine_location(settings),
        transforms.quarantine_schema(),
        "dt",
    )
    features = names.features_location(settings, portfolio=PORTFOLIO)
    frames["features"] = spark.read.parquet(to_spark_uri(features))
    raw = settings.bucket("raw")
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table, frame in frames.items():
        columns = sorted(frame.columns)
        rows = [
            tuple(
                str(row[c]).replace(raw, "<raw>") if c == "source_file" else row[c] for c in columns
            )
            for row in frame.select(*columns).collect()
        ]
        found[table] = sorted(rows, key=repr)
    return found


def differences(
    local: dict[str, list[tuple[Any, ...]]], cluster: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    """One line per table whose rows differ between the two runs (empty when all are equal)."""
    lines = []
    for table in sorted(set(local) | set(cluster)):
        mine, theirs = local.get(table, []), cluster.get(table, [])
        if mine != theirs:
            only_local = len(set(mine) - set(theirs))
            only_cluster = len(set(theirs) - set(mine))
            lines.append(
                f"{table}: {len(mine)} rows locally, {len(theirs)} on the cluster "
                f"({only_local} only local, {only_cluster} only on the cluster)"
            )
    return lines


if __name__ == "__main__" and sys.argv[1:] == ["--jobs"]:
    from riskstream.logs import configure_logging

    configure_logging()
    print(json.dumps(run_jobs(Settings.from_env()), default=str))
