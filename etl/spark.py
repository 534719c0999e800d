"""A SparkSession tuned for a 2-core laptop, with S3A pointed at the configured cloud.

Entry/IO module: it starts a JVM. Everything comes from a :class:`Settings` argument; nothing
here reads the environment. See docs/etl.md "Spark tuning" for why each setting is what it is.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from riskstream.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

S3A_JARS: tuple[str, ...] = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")

# Small on purpose: 2 cores and at most a few million rows. 200 (Spark's default) means
# 200 tiny tasks per shuffle, each with its own scheduling cost.
SHUFFLE_PARTITIONS = 4


# A local driver that lives for one job of a minute or two: HotSpot's optimizing compiler (C2)
# spends much of that compiling code the job has already finished with. The quick compiler alone
# (C1) cut a cold run of both ETL jobs on the default portfolio from 105 s to 68 s on the 2-core
# machine (same load, same data; docs/etl.md "Spark tuning"). A long-lived session (the warm
# session, etl.session_server, warmed up at start) and cluster executors keep the JVM's default:
# once compiled, C2's code parses and validates the raw lines 2.4 times as fast as C1's.
#
# With C1 alone the JVM reserves only 48 MB for compiled code. A session that runs both jobs twice
# filled it ("CodeCache is full. Compiler has been disabled"), and from then on every new method
# ran interpreted: the warm session (etl.session_server) got slower with each job instead of
# faster. 256 MB is reserved address space, committed only as it fills.
LOCAL_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


# Java's class data sharing for local drivers: an archive of the classes a driver loads, written
# once by setup (etl.class_archive), mapped at every start instead of read from the jars. A JVM
# whose class path differs from the archive's maps nothing and runs as without it; the line it
# logs to say so is switched off.
CLASS_ARCHIVE = "spark-classes.jsa"
CLASS_ARCHIVE_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive_path(settings: Settings) -> Path:
    """Where the class archive for ``settings``'s jars lives: beside the S3A jars, whose class
    path it is written with."""
    return Path(settings.spark_jars_dir) / CLASS_ARCHIVE


class SparkSetupError(RuntimeError):
    """Spark cannot be configured as asked; the message says what to do."""


def s3a_jars(settings: Settings) -> list[Path]:
    """The two S3A jars under ``settings.spark_jars_dir``; an error naming the missing one."""
    jars = [Path(settings.spark_jars_dir) / name for name in S3A_JARS]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise SparkSetupError(
            f"S3A jar(s) not found: {', '.join(missing)}; run `make setup` "
            "(or set RISKSTREAM_SPARK_JARS_DIR to the folder that holds them)"
        )
    return jars


def spark_conf(
    settings: Settings, app_name: str = "riskstream-etl", long_lived: bool = False
) -> dict[str, str]:
    """Every Spark setting we use, as a plain mapping (testable without starting a JVM).

    ``long_lived``: the session will run many jobs (the warm session), so the JIT compiler is
    left at the JVM's default instead of the quick compiler alone (:data:`LOCAL_JIT`)."""
    conf: dict[str, str] = {
        "spark.master": settings.spark_master,
        "spark.app.name": app_name,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "2g",
        # Everything on the loopback interface: no LAN exposure, no hostname lookups.
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
        "spark.default.parallelism": str(SHUFFLE_PARTITIONS),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        # Casts that fail give null (then a bad_type reason), not an exception mid-job.
        "spark.sql.ansi.enabled": "false",
        # Constraint propagation walks every expression of every filter/join; on the long
        # validation CASE used in three branches it ran the driver out of memory.
        "spark.sql.constraintPropagation.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.compression.codec": "snappy",
        # Fewer, larger input splits: per-task overhead dominates on 2 cores.
        "spark.sql.files.maxPartitionBytes": str(256 * 1024 * 1024),
        "spark.sql.files.openCostInBytes": str(8 * 1024 * 1024),
        # The Python workers are only used by the rare UDF; reuse them.
        "spark.python.worker.reuse": "true",
        # The validation CASE compiles to one long method; HotSpot skips JIT for methods over
        # 8000 bytes unless told otherwise, which left that stage interpreted (several x slower).
        "spark.driver.extraJavaOptions": (
            "-Duser.timezone=UTC -XX:+UseParallelGC -XX:-DontCompileHugeMethods"
        ),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:-DontCompileHugeMethods",
        # Commit by renaming files once, not twice (v2): fewer S3 copies.
        "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.parquet.summary.metadata.level": "NONE",
        # S3A
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.fast.upload": "true",
        "spark.hadoop.fs.s3a.connection.maximum": "32",
    }
    if settings.spark_master.startswith("local") and not long_lived:
        conf["spark.driver.extraJavaOptions"] += " " + LOCAL_JIT
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
        conf["spark.hadoop.fs.s3a.access.key"] = settings.aws_access_key_id
        conf["spark.hadoop.fs.s3a.secret.key"] = settings.aws_secret_access_key
    endpoint = settings.endpoint_for("s3")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.endpoint.region"] = settings.region
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            endpoint.startswith("https://")
        ).lower()
        # A local endpoint answers at once or not at all: fail fast instead of retrying 20 times.
        conf["spark.hadoop.fs.s3a.attempts.maximum"] = "3"
        conf["spark.hadoop.fs.s3a.retry.limit"] = "3"
        conf["spark.hadoop.fs.s3a.connection.establish.timeout"] = "5000"
    try:
        jars = s3a_jars(settings)
    except SparkSetupError:
        logger.warning(
            "S3A jars not found under %s: s3a:// paths will not work (local paths will)",
            settings.spark_jars_dir,
        )
        return conf
    classpath = ":".join(str(j) for j in jars)
    if settings.spark_master.startswith("local"):
        # Local Python workers run on this interpreter (the project's environment), not the
        # first `python3` on PATH; a cluster's executors use their own.
        conf["spark.pyspark.python"] = sys.executable
        # On the JVM's own classpath from the start: no copy through Spark's file server.
        conf["spark.driver.extraClassPath"] = classpath
        archive = class_archive_path(settings)
        if archive.is_file():
            conf["spark.driver.extraJavaOptions"] += (
                f" -XX:SharedArchiveFile={archive} {CLASS_ARCHIVE_QUIET}"
            )
    else:
        conf["spark.jars"] = ",".join(str(j) for j in jars)
    return conf


def build_spark(
    settings: Settings,
    app_name: str = "riskstream-etl",
    long_lived: bool = False,
    java_options: str = "",
) -> SparkSession:
    """Start (or reuse) the SparkSession for ``settings``; log how long the start took.
    ``long_lived``: see :func:`spark_conf`; ``java_options``: more options for the driver's JVM."""
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    conf = spark_conf(settings, app_name, long_lived)
    if java_options:
        conf["spark.driver.extraJavaOptions"] += " " + java_options
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info(
        "Spark %s session on %s ready in %.1f s",
        spark.version,
        settings.spark_master,
        time.perf_counter() - started,
    )
    return spark


def to_spark_uri(uri: str) -> str:
    """``s3://bucket/key`` -> ``s3a://bucket/key`` (what Hadoop's S3A connector answers to)."""
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://") :]
    return uri
