"""The risk tables (vintage, roll rates, delinquency buckets) against values computed by hand on
a small portfolio, and the job end to end: S3 on the local cloud, the catalog, `riskstream sql`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from etl import risktables, tasks, transforms
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.etl.helpers import PORTFOLIO, small_history, upload_by_day

pytestmark = pytest.mark.integration
JAN, FEB, MAR, APR = (dt.date(2025, m, 1) for m in (1, 2, 3, 4))


def _frame(spark: SparkSession, table: str, rows: list[dict[str, Any]]) -> DataFrame:
    schema = transforms.curated_schema(table)
    full = [{f.name: row.get(f.name) for f in schema.fields} for row in rows]
    return spark.createDataFrame(full, schema)


def _time(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour)


def portfolio(spark: SparkSession) -> dict[str, DataFrame]:
    """Four accounts, January to April 2025 (balances A 100, B 200, C 300, D 400):

    - A, opened in January: current, 30, 60, then 90+ days late in April (its default month);
    - B, opened in January: current, current, 30 in March (a corrected statement: 60 first,
      30 later: the later one counts), cured to current in April;
    - C, opened in February: paid duly (-1), current, then a statement without a status in
      April; an outcome observed in March says it defaulted (its default month);
    - D, opened in February, first statement in March: current, current; outcome 0 in April.
    """
    n = iter(range(1, 100))

    def statement(account: str, day: str, status: int | None, balance: float, hour: int = 23):
        return {
            "event_id": f"e{next(n):03d}",
            "account_id": account,
            "event_time": _time(day, hour),
            "source": PORTFOLIO,
            "statement_date": dt.date.fromisoformat(day),
            "balance": balance,
            "minimum_due": 10.0,
            "due_date": dt.date.fromisoformat(day),
            "repayment_status": status,
        }

    ends = ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]
    statements = [statement("A", d, s, 100.0) for d, s in zip(ends, [0, 1, 2, 3], strict=True)]
    statements += [statement("B", d, s, 200.0) for d, s in zip(ends, [0, 0, 2, 0], strict=True)]
    statements.append(
        statement("B", "2025-03-31", 1, 200.0, hour=23) | {"event_time": _time("2025-04-02")}
    )
    statements += [
        statement("C", d, s, 300.0) for d, s in zip(ends[1:], [-1, 0, None], strict=True)
    ]
    statements += [statement("D", d, 0, 400.0) for d in ends[2:]]
    opened = [
        {"event_id": f"o{i}", "account_id": a, "event_time": _time(day), "source": PORTFOLIO}
        for i, (a, day) in enumerate(
            [("A", "2025-01-15"), ("B", "2025-01-20"), ("C", "2025-02-10"), ("D", "2025-02-05")]
        )
    ]
    outcomes = [
        {
            "event_id": f"x{i}",
            "account_id": a,
            "event_time": _time(day),
            "source": PORTFOLIO,
            "default_flag": flag,
            "observed_date": dt.date.fromisoformat(day),
        }
        for i, (a, day, flag) in enumerate([("C", "2025-03-15", 1), ("D", "2025-04-30", 0)])
    ]
    return {
        "account_opened": _frame(spark, "account_opened", opened),
        "statement": _frame(spark, "statement", statements),
        "outcome": _frame(spark, "outcome", outcomes),
    }


def _rows(frame: DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame.collect()]


def test_delinquency_buckets_by_hand(spark: SparkSession) -> None:
    table = risktables.delinquency_buckets(portfolio(spark)["statement"])
    assert table.columns == ["month", "bucket", "accounts", "balance", "share"]
    assert _rows(table) == [
        (JAN, "current", 2, 300.0, 1.0),
        (FEB, "30", 1, 100.0, 1 / 3),
        (FEB, "current", 2, 500.0, 2 / 3),
        (MAR, "30", 1, 200.0, 0.25),  # B's corrected statement, not its first
        (MAR, "60", 1, 100.0, 0.25),
        (MAR, "current", 2, 700.0, 0.5),
        (APR, "90+", 1, 100.0, 0.25),
        (APR, "current", 2, 600.0, 0.5),
        (APR, "unknown", 1, 300.0, 0.25),
    ]


def test_roll_rates_by_hand(spark: SparkSession) -> None:
    table = risktables.roll_rates(portfolio(spark)["statement"])
    assert table.columns == ["month", "from_bucket", "to_bucket", "accounts", "rate"]
    assert _rows(table) == [
        (FEB, "current", "30", 1, 0.5),  # A rolls forward
        (FEB, "current", "current", 1, 0.5),
        (MAR, "30", "60", 1, 1.0),
        (MAR, "current", "30", 1, 0.5),  # B
        (MAR, "current", "current", 1, 0.5),  # C; D has no February statement
        (APR, "30", "current", 1, 1.0),  # B cures
        (APR, "60", "90+", 1, 1.0),
        (APR, "current", "current", 1, 0.5),
        (APR, "current", "unknown", 1, 0.5),
    ]


def test_vintages_by_hand(spark: SparkSession) -> None:
    tables = portfolio(spark)
    table = risktables.vintages(tables["account_opened"], tables["statement"], tables["outcome"])
    assert table.columns == [
        "cohort",
        "months_on_book",
        "accounts",
        "defaults",
        "cumulative_default_rate",
    ]
    assert _rows(table) == [
        (JAN, 0, 2, 0, 0.0),
        (JAN, 1, 2, 0, 0.0),
        (JAN, 2, 2, 0, 0.0),
        (JAN, 3, 2, 1, 0.5),  # A reaches 90+ in April, its fourth month on book
        (FEB, 0, 2, 0, 0.0),
        (FEB, 1, 2, 1, 0.5),  # C's default observed in March
        (FEB, 2, 2, 1, 0.5),  # cumulative
    ]
    assert risktables.as_of(tables["statement"]) == "2025-04-01"


def test_the_job_writes_catalogs_and_answers_sql(
    spark: SparkSession, provisioned: Settings
) -> None:
    from serving.sql import run_sql

    settings = provisioned.for_portfolio(PORTFOLIO)
    s3 = make_client(settings, "s3")
    upload_by_day(s3, settings.bucket("raw"), small_history())
    tasks.raw_to_curated(settings, "2026-01-15")

    report = tasks.risk_tables(settings, "2026-01-15")
    # three accounts opened in June 2005, statements July to September, all current; A1's
    # default is observed in October, after the data's last statement month
    assert report["as_of"] == "2005-09-01"
    assert report["tables"] == {
        names.risk_table(names.VINTAGE_TABLE, PORTFOLIO): 4,
        names.risk_table(names.ROLL_RATES_TABLE, PORTFOLIO): 2,
        names.risk_table(names.DELINQUENCY_TABLE, PORTFOLIO): 3,
    }
    glue = make_client(settings, "glue")
    for name in names.RISK_TABLES:
        table = glue.get_table(
            DatabaseName=settings.glue_database, Name=names.risk_table(name, PORTFOLIO)
        )["Table"]
        location = names.risk_table_location(settings, name)
        assert table["StorageDescriptor"]["Location"] == location + "/"
        assert table["PartitionKeys"] == [{"Name": names.AS_OF, "Type": "string"}]
    vintage = run_sql(settings, "select * from vintage order by months_on_book")
    assert vintage["months_on_book"].tolist() == [0, 1, 2, 3]
    assert set(vintage["accounts"]) == {3} and set(vintage["cumulative_default_rate"]) == {0.0}
    assert set(vintage["as_of"]) == {"2005-09-01"}
    rolls = run_sql(settings, "select from_bucket, to_bucket, accounts, rate from roll_rates")
    assert rolls.values.tolist() == [["current", "current", 3, 1.0]] * 2
    buckets = run_sql(settings, "select bucket, sum(accounts) n from delinquency group by 1")
    assert buckets.values.tolist() == [["current", 9]]
    # a second run replaces the snapshot: still one file per table and month
    tasks.risk_tables(settings, "2026-01-16")
    again = run_sql(settings, f"select count(*) n from {names.risk_table('vintage', PORTFOLIO)}")
    assert again["n"].tolist() == [4]
