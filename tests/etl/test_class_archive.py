"""The class archive setup writes (etl/class_archive.py) is the one a local driver maps."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from etl.spark import class_archive_path
from riskstream.settings import Settings

pytestmark = pytest.mark.integration  # the session's Spark JVM


def test_the_local_driver_maps_the_archive_setup_wrote(
    spark: SparkSession, cloud_settings: Settings
) -> None:
    archive = class_archive_path(cloud_settings)
    assert archive.is_file(), "setup writes it: see infra/bootstrap.sh and .venv/class-archive.log"
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
    mapped = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}
    # a JVM whose class path or JDK differs from the archive's maps nothing (and says nothing)
    assert str(archive) in mapped
