"""ETL fixtures: one SparkSession for the whole test session (its start is the expensive part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from etl.spark import build_spark
from riskstream.settings import Settings

# how the test session runs its plans (not what they answer): see ``spark``
TEST_ONLY = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


@pytest.fixture(scope="session")
def spark(cloud_settings: Settings) -> Iterator[SparkSession]:
    """A local[2] session whose S3A points at the session's moto server.

    S3A settings are read per file system instance, so tests with other prefixes (buckets) on
    the same server share this session. It runs hundreds of small jobs over the whole test
    session, so its JIT is a long-lived session's (``long_lived``, as the warm session's): with
    HotSpot's optimizing compiler, planning and running the feature table's wide plan took about
    half as long once warm as with the quick compiler alone (etl.spark.LOCAL_JIT).

    Adaptive query execution is off here (only here): it plans again after every shuffle, and on
    the tests' tables of a few hundred accounts that was a quarter of the work (the features,
    transforms and panel tests: 206 CPU-seconds with it, 158 without). It chooses how a plan
    runs, not what it answers; the jobs under test in their own sessions (the warm session, the
    cluster, the pipeline e2e) keep every production setting.

    Nor is generated code compiled here: on tables of a few accounts, compiling each plan's Java
    (whole-stage code generation, then each expression's) cost more than running it interpreted
    (the same tests: JVM CPU 190 s compiled, 160 s interpreted). Spark's own tests run every
    expression both ways; what it answers is the same.

    Arrow is on, so a test's DataFrame made from pandas (``tests.etl.helpers.lines_frame``)
    needs no Python worker to read it.
    """
    session = build_spark(cloud_settings, app_name="riskstream-etl-tests", long_lived=True)
    for key, value in TEST_ONLY.items():
        session.conf.set(key, value)
    yield session
    session.stop()
