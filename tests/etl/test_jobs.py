"""The Glue-style jobs end to end: on local folders, and through S3A on the local cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl import layout, tasks, transforms
from etl.jobs import curated_to_features as c2f
from etl.jobs import raw_to_curated as r2c
from riskstream import names as contract
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import Storage, split_s3
from tests.etl.helpers import PORTFOLIO, purchase, small_history, upload_by_day, write_raw

RUN_DATE = "2026-01-15"


def _files(folder: Path) -> dict[str, int]:
    """Every data file and manifest under ``folder`` -> its mtime (what a run writes)."""
    found = [*folder.rglob("*.parquet"), *folder.rglob(layout.MANIFEST)]
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in found}


@pytest.fixture
def history(tmp_path: Path) -> list[Any]:
    """The small history, written as raw files under ``tmp_path / "raw"``."""
    events = small_history()
    write_raw(tmp_path / "raw", events)
    return events


@pytest.fixture
def args(cloud_settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The curation job's arguments for a lake in local folders under ``tmp_path``."""
    return r2c.options(
        cloud_settings,
        source=str(tmp_path / "raw"),
        target=str(tmp_path / "curated"),
        quarantine=str(tmp_path / "quarantine"),
        run_date=RUN_DATE,
    )


def _table(spark: SparkSession, root: Path, table: str) -> DataFrame:
    schema = transforms.curated_schema(table)
    return layout.read_table(spark, Storage(), str(root / "curated" / table), schema)


def _manifest(root: Path, table: str) -> dict[str, Any]:
    return layout.load_manifest(Storage(), str(root / "curated" / table), layout.MONTH_KEY)


@pytest.mark.integration
def test_job_on_local_files_balances_and_bookmarks(
    spark: SparkSession,
    cloud_settings: Settings,
    tmp_path: Path,
    history: list[Any],
    args: dict[str, str],
) -> None:
    write_raw(tmp_path / "raw", ["{oops"], dt="2005-07-31", name="bad.jsonl.gz")

    first = r2c.run(spark, cloud_settings, args)
    assert first["rows_in"] == len(history) + 1
    assert first["rows_out"] == {
        "account_opened": 3,
        "statement": 9,
        "payment": 9,
        "purchase": 9,
        "outcome": 3,
    }
    assert first["quarantined"] == {"bad_json": 1, "unknown_account": 1}
    assert first["duplicates_removed"] == 1
    assert first["balanced"] is True
    assert json.loads(Path(first["report_uri"]).read_text())["rows_in"] == first["rows_in"]
    assert first["partitions_processed"][0] == "dt=2005-06-01/hr=12"  # raw by arrival hour
    # Curated by event month, one file per partition.
    statements = _manifest(tmp_path, "statement")["partitions"]
    assert sorted(statements) == ["2005-07", "2005-08", "2005-09"]
    assert all(len(e["files"]) == 1 for e in statements.values())
    assert _table(spark, tmp_path, "statement").count() == 9
    quarantined = layout.read_table(
        spark, Storage(), str(tmp_path / "quarantine"), transforms.quarantine_schema(), "dt"
    ).collect()
    assert sorted(r["reason"] for r in quarantined) == ["bad_json", "unknown_account"]

    # Second run, no new data: nothing read, nothing written.
    before = _files(tmp_path / "curated")
    second = r2c.run(spark, cloud_settings, args)
    assert (second["partitions_processed"], second["rows_in"]) == ([], 0)
    assert _files(tmp_path / "curated") == before

    # A new arrival hour with a late event for an old month, an event already curated (sent
    # again) and a new month: the late one lands in its month, the resent one is a duplicate.
    late = purchase(501, "A2", "2005-08-31", 8.0)
    resent = history[4]  # A0's 08-31 statement, curated by the first run
    assert resent["event_time"].startswith("2005-08-31")
    new_month = purchase(500, "A1", "2005-10-02", 7.0)
    write_raw(tmp_path / "raw", [late, resent, new_month], dt="2026-01-15", hr=3)
    third = r2c.run(spark, cloud_settings, args)
    assert third["partitions_processed"] == ["dt=2026-01-15/hr=03"]
    assert third["rows_out"]["purchase"] == 2
    assert third["duplicates_removed"] == 1  # across runs, not only within one
    assert third["partitions_written"]["purchase"] == ["2005-08", "2005-10"]
    assert third["partitions_written"]["statement"] == []
    after = _files(tmp_path / "curated")
    untouched = {k: v for k, v in before.items() if k.startswith(("statement/", "payment/"))}
    assert {k: after[k] for k in untouched} == untouched
    purchases = _table(spark, tmp_path, "purchase")
    assert purchases.count() == 9 + 2
    assert purchases.select("event_id").distinct().count() == 11
    august = layout.read_table(
        spark,
        Storage(),
        str(tmp_path / "curated" / "purchase"),
        transforms.curated_schema("purchase"),
        values=["2005-08"],
    )
    assert august.where(F.col("event_id") == late["event_id"]).count() == 1

    # A rerun after the late event: nothing written, the late event still there once.
    before = _files(tmp_path / "curated")
    fourth = r2c.run(spark, cloud_settings, args)
    assert fourth["partitions_processed"] == []
    assert _files(tmp_path / "curated") == before
    assert (
        _table(spark, tmp_path, "purchase").where(F.col("event_id") == late["event_id"]).count()
        == 1
    )

    # Reset: a rebuild from the whole raw history gives the same rows (no duplicates).
    fifth = r2c.run(spark, cloud_settings, {**args, "reset": "true"})
    assert len(fifth["partitions_processed"]) == len(list((tmp_path / "raw").glob("dt=*/hr=*")))
    assert _table(spark, tmp_path, "purchase").count() == 11

    features_args = c2f.options(
        cloud_settings,
        portfolio=PORTFOLIO,
        source=str(tmp_path / "curated"),
        target=str(tmp_path / "features"),
        run_date=RUN_DATE,
    )
    report = c2f.run(spark, cloud_settings, features_args)
    assert report["obs_dates"] == ["2005-10-01"]
    assert report["rows_out"] == 3
    assert report["labels"] == {"1": 1, "0": 2, "null": 0}
    assert report["written"] is True
    # Pruned: the windows of 2005-10-01 reach back to 2005-03; 2005-10 purchases are read too
    # (one month of margin), nothing outside.
    assert report["rows_read"]["purchase"] == 11
    assert "2005-10" in report["months_read"]["purchase"]
    assert "2004-12" not in report["months_read"]["purchase"]
    # A rerun of both jobs with nothing new writes nothing.
    before = {**_files(tmp_path / "curated"), **_files(tmp_path / "features")}
    assert r2c.run(spark, cloud_settings, args)["partitions_processed"] == []
    again = c2f.run(spark, cloud_settings, features_args)
    assert again["written"] is False
    assert (again["rows_out"], again["labels"]) == (3, report["labels"])
    assert {**_files(tmp_path / "curated"), **_files(tmp_path / "features")} == before


class InjectedCrash(RuntimeError):
    pass


@pytest.mark.integration
@pytest.mark.usefixtures("history")
def test_a_crash_between_write_and_commit_keeps_the_previous_data_and_the_next_run_completes(
    spark: SparkSession,
    cloud_settings: Settings,
    tmp_path: Path,
    monkeypatch: Any,
    args: dict[str, str],
) -> None:
    r2c.run(spark, cloud_settings, args)
    previous = sorted(r["event_id"] for r in _table(spark, tmp_path, "purchase").collect())
    manifest = _manifest(tmp_path, "purchase")

    late = purchase(600, "A1", "2005-07-31", 4.0)
    write_raw(tmp_path / "raw", [late], dt="2026-01-15", hr=9)

    def crash(report: Any) -> None:
        raise InjectedCrash("killed between writing and committing")

    monkeypatch.setattr(r2c, "before_commit", crash)
    with pytest.raises(InjectedCrash):
        r2c.run(spark, cloud_settings, args)
    # The new version was written ...
    assert len(list((tmp_path / "curated" / "purchase").glob("event_month=2005-07/v=*"))) == 2
    # ... but not committed: readers see exactly the previous rows.
    assert _manifest(tmp_path, "purchase") == manifest
    now = sorted(r["event_id"] for r in _table(spark, tmp_path, "purchase").collect())
    assert now == previous

    monkeypatch.undo()
    done = r2c.run(spark, cloud_settings, args)
    assert done["partitions_processed"] == ["dt=2026-01-15/hr=09"]
    ids = [r["event_id"] for r in _table(spark, tmp_path, "purchase").collect()]
    assert sorted(ids) == sorted([*previous, late["event_id"]])
    # The orphan left by the crash is never read and can be vacuumed.
    table = str(tmp_path / "curated" / "purchase")
    assert layout.vacuum(Storage(), table, _manifest(tmp_path, "purchase")) >= 2
    assert len(list((tmp_path / "curated" / "purchase").glob("event_month=2005-07/v=*"))) == 1


@pytest.mark.integration
@pytest.mark.usefixtures("history")
def test_a_lake_written_with_another_layout_is_rebuilt_in_this_one(
    spark: SparkSession, cloud_settings: Settings, tmp_path: Path, args: dict[str, str]
) -> None:
    first = r2c.run(spark, cloud_settings, args)
    opened = tmp_path / "curated" / "account_opened"
    assert sorted(p.name for p in opened.glob("event_year=*")) == ["event_year=2005"]
    # As an earlier release left it: accounts opened partitioned by month.
    stale = json.loads((opened / layout.MANIFEST).read_text())
    stale["key"] = layout.MONTH_KEY
    stale["partitions"] = {"2005-06": stale["partitions"]["2005"]}
    (opened / layout.MANIFEST).write_text(json.dumps(stale))

    again = r2c.run(spark, cloud_settings, args)  # no new raw data, but another layout
    assert again["rebuild"] is True
    assert again["rows_out"] == first["rows_out"]  # every table rebuilt from the raw history
    manifest = layout.load_manifest(Storage(), str(opened), layout.YEAR_KEY)
    assert sorted(manifest["partitions"]) == ["2005"]
    schema = transforms.curated_schema("account_opened")
    rows = layout.read_table(spark, Storage(), str(opened), schema, layout.YEAR_KEY).collect()
    assert sorted(r["account_id"] for r in rows) == ["A0", "A1", "A2"]


@pytest.mark.integration
def test_s3a_run_on_the_local_cloud_fills_the_catalog(
    spark: SparkSession, provisioned: Settings
) -> None:
    settings = provisioned
    s3 = make_client(settings, "s3")
    glue = make_client(settings, "glue")
    raw = settings.bucket("raw")
    days = upload_by_day(s3, raw, small_history())

    report = tasks.raw_to_curated(settings, RUN_DATE)
    assert report["balanced"] is True
    assert report["rows_in"] == (
        report["rows_out_total"] + report["quarantined_total"] + report["duplicates_removed"]
    )
    assert report["rows_in"] == len(small_history())
    bucket, key = report["report_uri"][len("s3://") :].split("/", 1)
    saved = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert saved["rows_out"] == report["rows_out"]

    database = settings.glue_database
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert {"curated_statement", "curated_payment", "etl_quarantine"} <= set(tables)
    statement_table = tables["curated_statement"]
    assert statement_table["StorageDescriptor"]["Location"] == (
        f"s3://{settings.bucket('curated')}/statement/"
    )
    columns = {c["Name"]: c["Type"] for c in statement_table["StorageDescriptor"]["Columns"]}
    assert columns["balance"] == "double"
    assert columns["statement_date"] == "date"
    assert statement_table["PartitionKeys"] == [{"Name": "event_month", "Type": "string"}]
    partitions = glue.get_partitions(DatabaseName=database, TableName="curated_statement")
    found = {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in partitions["Partitions"]}
    assert sorted(found) == ["2005-07", "2005-08", "2005-09"]
    curated = settings.bucket("curated")
    for month, location in found.items():  # each partition points at its committed version
        assert location == f"s3://{curated}/statement/event_month={month}/v={report['run_id']}/"
    # Accounts opened are one row per account, read whole: partitioned by year, not month.
    opened_table = tables["curated_account_opened"]
    assert opened_table["PartitionKeys"] == [{"Name": "event_year", "Type": "string"}]
    opened = glue.get_partitions(DatabaseName=database, TableName="curated_account_opened")
    assert [p["Values"] for p in opened["Partitions"]] == [["2005"]]

    bookmark = s3.get_object(
        Bucket=settings.bucket("artifacts"), Key="etl/bookmarks/raw_to_curated.json"
    )
    marked = json.loads(bookmark["Body"].read())["raw_events"]
    assert sorted(marked) == [f"dt={dt}/hr=12" for dt in days]
    again = tasks.raw_to_curated(settings, RUN_DATE)
    assert (again["partitions_processed"], again["rows_in"]) == ([], 0)

    settings = settings.for_portfolio(PORTFOLIO)  # the events' portfolio
    features = tasks.curated_to_features(settings, RUN_DATE)
    assert (features["rows_out"], features["obs_dates"]) == (3, ["2005-10-01"])
    own = contract.features_table(settings.portfolio)
    table = glue.get_table(DatabaseName=database, Name=own)["Table"]
    assert table["StorageDescriptor"]["Location"] == contract.features_location(settings) + "/"
    names = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert names[:3] == ["account_id", "label", "source"]
    assert "bill_amt_m1" in names
    parts = glue.get_partitions(DatabaseName=database, TableName=own)["Partitions"]
    assert [p["Values"] for p in parts] == [["2005-10-01"]]
    bucket, prefix = split_s3(contract.features_location(settings, "2005-10-01") + "/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(o["Key"].endswith(".parquet") for o in listed.get("Contents", []))

    scoring = tasks.scoring_features(settings, RUN_DATE)
    assert scoring["obs_dates"] == [RUN_DATE]
    # A1 defaulted in October 2005, so it is no longer scored; the others are, without label.
    assert scoring["labels"]["null"] == scoring["rows_out"] == 2
