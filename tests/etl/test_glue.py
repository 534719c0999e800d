"""Glue-like helpers without Spark: resolved options, bookmarks, partition listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.glue import BookmarkStore, GlueArgumentError, Job, get_resolved_options
from etl.spark import CLASS_ARCHIVE, S3A_JARS, class_archive_path, spark_conf
from riskstream.settings import Settings
from riskstream.storage import Storage, fingerprint

pytestmark = pytest.mark.unit


def test_resolved_options_read_both_spellings_and_defaults() -> None:
    argv = [
        "job.py",
        "--JOB_NAME",
        "r2c",
        "--source=s3://b/events/",
        "--job-bookmark-option",
        "job-bookmark-pause",
    ]
    args = get_resolved_options(argv, ["JOB_NAME", "source"], {"target": "s3://c/"})
    assert args == {
        "JOB_NAME": "r2c",
        "source": "s3://b/events/",
        "target": "s3://c/",
        "job_bookmark_option": "job-bookmark-pause",
    }


def test_resolved_options_name_what_is_missing() -> None:
    with pytest.raises(GlueArgumentError, match="--JOB_NAME, --source"):
        get_resolved_options(["job.py"], ["JOB_NAME", "source"])
    with pytest.raises(GlueArgumentError, match="--run_date has no value"):
        get_resolved_options(["job.py", "--run_date"], [])


def test_bookmarks_skip_done_partitions_and_redo_changed_ones(tmp_path: Path) -> None:
    store = BookmarkStore(Storage(), str(tmp_path / "bookmarks"))
    args = {"job_bookmark_option": "job-bookmark-enable"}
    job = Job(store).init("r2c", args)
    assert job.pending("raw", {"2025-01-01": "a", "2025-01-02": "b"}) == [
        "2025-01-01",
        "2025-01-02",
    ]
    job.mark("raw", {"2025-01-01": "a", "2025-01-02": "b"})
    job.commit()

    again = Job(store).init("r2c", args)
    assert again.pending("raw", {"2025-01-01": "a", "2025-01-02": "b"}) == []
    # a late file changed 01-02's fingerprint; 01-03 is new
    assert again.pending("raw", {"2025-01-01": "a", "2025-01-02": "b2", "2025-01-03": "c"}) == [
        "2025-01-02",
        "2025-01-03",
    ]
    store.reset("r2c")
    assert Job(store).init("r2c", args).pending("raw", {"2025-01-01": "a"}) == ["2025-01-01"]


def test_paused_and_disabled_bookmarks_save_nothing(tmp_path: Path) -> None:
    store = BookmarkStore(Storage(), str(tmp_path))
    for option in ("job-bookmark-pause", "job-bookmark-disable"):
        job = Job(store).init("j", {"job_bookmark_option": option})
        job.mark("raw", {"d": "x"})
        job.commit()
    assert store.load("j") == {}
    with pytest.raises(GlueArgumentError, match="'bogus'"):
        Job(store).init("j", {"job_bookmark_option": "bogus"})


def test_local_partition_listing_and_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "dt=2025-01-01").mkdir()
    (tmp_path / "dt=2025-01-01" / "a.jsonl.gz").write_bytes(b"x")
    (tmp_path / "dt=2025-01-01" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "other").mkdir()
    listed = Storage().list_partitions(str(tmp_path))
    assert list(listed) == ["2025-01-01"]
    assert [f.name for f in listed["2025-01-01"]] == ["a.jsonl.gz"]
    before = fingerprint(listed["2025-01-01"])
    (tmp_path / "dt=2025-01-01" / "b.jsonl.gz").write_bytes(b"y")
    assert fingerprint(Storage().list_partitions(str(tmp_path))["2025-01-01"]) != before


def test_spark_conf_points_s3a_at_the_local_endpoint() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_CLOUD_PORT": "4999"})
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:4999"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert conf["spark.master"] == "local[2]"
    assert "spark.jars.packages" not in conf
    aws = spark_conf(Settings.from_mapping({"RISKSTREAM_TARGET": "aws"}))
    assert "spark.hadoop.fs.s3a.endpoint" not in aws
    assert "spark.hadoop.fs.s3a.access.key" not in aws


def test_only_a_local_driver_stops_at_the_quick_jit_compiler() -> None:
    local = spark_conf(Settings.from_mapping({"RISKSTREAM_SPARK_MASTER": "local[2]"}))
    assert "-XX:TieredStopAtLevel=1" in local["spark.driver.extraJavaOptions"]
    # C1 alone reserves 48 MB of code cache, which a warm session fills (then runs interpreted).
    assert "-XX:ReservedCodeCacheSize=256m" in local["spark.driver.extraJavaOptions"]
    # The warm session lives for many jobs: the optimizing compiler pays off there.
    warm = spark_conf(
        Settings.from_mapping({"RISKSTREAM_SPARK_MASTER": "local[2]"}), long_lived=True
    )
    assert "TieredStopAtLevel" not in warm["spark.driver.extraJavaOptions"]
    cluster = spark_conf(
        Settings.from_mapping({"RISKSTREAM_SPARK_MASTER": "spark://10.0.0.5:7077"})
    )
    assert "TieredStopAtLevel" not in cluster["spark.driver.extraJavaOptions"]
    assert "TieredStopAtLevel" not in cluster["spark.executor.extraJavaOptions"]


def test_a_local_driver_maps_the_class_archive_when_setup_wrote_one(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in S3A_JARS:
        (jars / name).write_bytes(b"")
    local = Settings.from_mapping({"RISKSTREAM_SPARK_JARS_DIR": str(jars)})
    assert "SharedArchiveFile" not in spark_conf(local)["spark.driver.extraJavaOptions"]
    class_archive_path(local).write_bytes(b"")
    options = spark_conf(local)["spark.driver.extraJavaOptions"]
    assert f"-XX:SharedArchiveFile={jars / CLASS_ARCHIVE}" in options
    assert "-Xlog:cds=off" in options  # a JVM that cannot use it runs without it, silently
    # the archive holds the local driver's class path: a cluster's JVMs have another
    cluster = spark_conf(local.with_overrides(spark_master="spark://10.0.0.5:7077"))
    assert "SharedArchiveFile" not in cluster["spark.driver.extraJavaOptions"]
    assert "SharedArchiveFile" not in cluster["spark.executor.extraJavaOptions"]
