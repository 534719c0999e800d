"""A class archive for local Spark drivers (Java's class data sharing): a JVM starts on less CPU.

I/O module. A local Spark driver reads, verifies and parses thousands of classes from Spark's
jars every time it starts. Java 17 can map the classes a JVM loaded from an archive instead
(dynamic class data sharing): ``make setup`` writes one (:func:`build`) by running the warm-up
jobs (:mod:`etl.warmup`, on a few accounts) in a JVM that archives the classes it loaded when it
exits, and :func:`etl.spark.spark_conf` gives every local driver the archive when it exists
(:func:`etl.spark.class_archive_path`). On the 2-core machine a cold session and a small job
took 7.0 CPU-seconds of its JVM without the archive and 3.7 with it (and 8.1 s against 5.0 s of
wall time); every Airflow task, pipeline step and test that starts a local driver starts so.

The archive holds only what its JVM and class path had when it was written. A JVM that differs
(a cluster's daemons and executors, which have another class path; another JDK; a reinstalled
pyspark) maps nothing and runs as it would without it; the line it logs to say so is switched off.
Setup writes the archive again whenever it installs the dependencies again.

``python -m etl.class_archive`` writes the archive for the default settings (what setup runs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from etl.spark import class_archive_path
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

ACCOUNTS = 30  # enough accounts for every path of both jobs; the classes are what is wanted


def build(settings: Settings) -> Path:
    """Write the archive for ``settings`` (replacing any): run the warm-up jobs in a local
    driver that archives its classes at exit, then wait for that JVM to exit. Returns the path."""
    from pyspark import SparkContext

    from etl.spark import CLASS_ARCHIVE_QUIET, build_spark, s3a_jars
    from etl.warmup import warm_up

    s3a_jars(settings)  # the archive holds the class path with them: an error naming the fix
    final = class_archive_path(settings)
    final.unlink(missing_ok=True)  # a JVM that maps an archive cannot write another
    partial = final.with_name(f".{final.name}.{os.getpid()}")
    started = time.perf_counter()
    spark = build_spark(
        settings.with_overrides(spark_master="local[2]"),
        "riskstream-archive",
        # quiet: it lists every class it cannot keep, such as those of signed jars
        java_options=f"-XX:ArchiveClassesAtExit={partial} {CLASS_ARCHIVE_QUIET}",
    )
    with tempfile.TemporaryDirectory(prefix="riskstream-archive-") as scratch:
        warm_up(spark, settings.with_overrides(state_dir=Path(scratch)), accounts=ACCOUNTS)
    spark.stop()
    # the JVM writes the archive as it exits, which it does when its standard input closes
    jvm = SparkContext._gateway.proc  # type: ignore[union-attr]
    jvm.stdin.close()
    jvm.wait(timeout=300)
    if not partial.is_file():
        raise RuntimeError(f"the JVM exited ({jvm.returncode}) without writing {partial}")
    partial.replace(final)
    logger.info(
        "wrote the Spark class archive %s (%.0f MB) in %.0f s",
        final,
        final.stat().st_size / 1e6,
        time.perf_counter() - started,
    )
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--if-missing", action="store_true", help="exit 0 if the archive exists, 1 if not"
    )
    what.add_argument("--remove", action="store_true", help="remove the archive, if any")
    args = parser.parse_args(argv)
    settings = Settings.from_env(dotenv=None)
    if args.if_missing:
        return 0 if class_archive_path(settings).is_file() else 1
    if args.remove:
        class_archive_path(settings).unlink(missing_ok=True)
        return 0
    from riskstream.logs import configure_logging

    configure_logging()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        build(settings)
    except Exception as exc:  # the archive saves CPU; without it Spark runs as before
        logger.warning(
            "no Spark class archive (%s: %s); Spark starts without one", type(exc).__name__, exc
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
