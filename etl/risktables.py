"""The analysts' standard risk tables from the curated tables (pure: DataFrame -> DataFrame).

- **Delinquency buckets** (:func:`delinquency_buckets`): accounts and balance per statement
  month and bucket, with each bucket's share of the month's accounts.
- **Roll rates** (:func:`roll_rates`): accounts per (bucket last month, bucket this month) for
  the accounts with a statement in both, and the share of each earlier bucket that rolled to each
  later one (stayed, cured, rolled forward).
- **Vintages** (:func:`vintages`): per opening cohort (the month of ``account_opened``) and months
  on book, the cohort's accounts and the cumulative default rate: the share of the cohort that
  had defaulted by the end of that month on book. An account defaults in the first month its
  repayment status reaches the 90+ bucket or an outcome with ``default_flag`` 1 is observed,
  whichever is first. A cohort's curve runs to the last statement month of the data.

Buckets are :data:`riskstream.names.DELINQUENCY_BUCKETS` of the statement's repayment status
(Taiwan's convention: -2 no use, -1 paid duly, 0 revolving, k = k months late), ``unknown`` when
a statement carries none. One statement per account and month: a corrected statement (a later
``event_time`` for the same month) replaces the earlier one, as in the features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskstream.names import DELINQUENCY_BUCKETS, UNKNOWN_BUCKET

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def bucket_of(status: Column) -> Column:
    """The delinquency bucket of a repayment status (``unknown`` when null)."""
    from pyspark.sql import functions as F

    out = F.lit(UNKNOWN_BUCKET)
    for label, low in DELINQUENCY_BUCKETS:  # ascending: the last bucket whose bound it reaches
        out = F.when(status.isNotNull() & (status >= low), F.lit(label)).otherwise(out)
    return out


def monthly_statements(statements: DataFrame) -> DataFrame:
    """One row per account and statement month: ``account_id, month`` (first day),
    ``repayment_status, balance, bucket``; the latest event of a month wins."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    month = F.trunc(F.col("statement_date"), "month")
    latest = Window.partitionBy("account_id", "month").orderBy(
        F.col("event_time").desc(), F.col("event_id").desc()
    )
    return (
        statements.where(F.col("statement_date").isNotNull())
        .withColumn("month", month)
        .withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") == 1)
        .select(
            "account_id",
            "month",
            "repayment_status",
            "balance",
            bucket_of(F.col("repayment_status")).alias("bucket"),
        )
    )


def delinquency_buckets(statements: DataFrame) -> DataFrame:
    """``month, bucket, accounts, balance, share`` (share of the month's accounts)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counted = (
        monthly_statements(statements)
        .groupBy("month", "bucket")
        .agg(F.count(F.lit(1)).alias("accounts"), F.sum("balance").alias("balance"))
    )
    in_month = F.sum("accounts").over(Window.partitionBy("month"))
    return counted.withColumn("share", F.col("accounts") / in_month).orderBy("month", "bucket")


def roll_rates(statements: DataFrame) -> DataFrame:
    """``month, from_bucket, to_bucket, accounts, rate``: accounts in ``from_bucket`` the month
    before ``month`` and in ``to_bucket`` in it; ``rate`` = accounts / accounts of the pair's
    ``from_bucket`` that month with a statement in both months."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    monthly = monthly_statements(statements)
    before = monthly.select(
        "account_id",
        F.add_months("month", 1).alias("month"),
        F.col("bucket").alias("from_bucket"),
    )
    after = monthly.select("account_id", "month", F.col("bucket").alias("to_bucket"))
    pairs = (
        before.join(after, ["account_id", "month"])
        .groupBy("month", "from_bucket", "to_bucket")
        .agg(F.count(F.lit(1)).alias("accounts"))
    )
    from_total = F.sum("accounts").over(Window.partitionBy("month", "from_bucket"))
    return pairs.withColumn("rate", F.col("accounts") / from_total).orderBy(
        "month", "from_bucket", "to_bucket"
    )


def vintages(opened: DataFrame, statements: DataFrame, outcomes: DataFrame) -> DataFrame:
    """``cohort, months_on_book, accounts, defaults, cumulative_default_rate`` for every month
    on book from 0 to the data's last statement month (see the module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first_open = Window.partitionBy("account_id").orderBy("event_time", "event_id")
    accounts = (
        opened.withColumn("_n", F.row_number().over(first_open))
        .where(F.col("_n") == 1)
        .select("account_id", F.trunc(F.to_date("event_time"), "month").alias("cohort"))
    )
    monthly = monthly_statements(statements)
    worst = DELINQUENCY_BUCKETS[-1][0]
    bad_statement = (
        monthly.where(F.col("bucket") == worst)
        .groupBy("account_id")
        .agg(F.min("month").alias("default_month"))
    )
    bad_outcome = (
        outcomes.where(F.col("default_flag") == 1)
        .groupBy("account_id")
        .agg(F.min(F.trunc(F.col("observed_date"), "month")).alias("default_month"))
    )
    defaulted = (
        bad_statement.unionByName(bad_outcome)
        .groupBy("account_id")
        .agg(F.min("default_month").alias("default_month"))
    )
    last_month = monthly.agg(F.max("month").alias("last_month"))
    cohorts = (
        accounts.groupBy("cohort")
        .agg(F.count(F.lit(1)).alias("accounts"))
        .crossJoin(last_month)
        .where(F.col("cohort") <= F.col("last_month"))
        .withColumn(
            "months_on_book",
            F.explode(F.sequence(F.lit(0), F.months_between("last_month", "cohort").cast("int"))),
        )
        .drop("last_month")
    )
    default_mob = accounts.join(defaulted, "account_id").select(
        "cohort", F.months_between("default_month", "cohort").cast("int").alias("default_mob")
    )
    by_mob = default_mob.groupBy("cohort", "default_mob").agg(F.count(F.lit(1)).alias("new"))
    joined = cohorts.join(
        by_mob,
        (cohorts["cohort"] == by_mob["cohort"])
        & (by_mob["default_mob"] <= cohorts["months_on_book"]),
        "left",
    )
    return (
        joined.groupBy(cohorts["cohort"], "months_on_book", "accounts")
        .agg(F.coalesce(F.sum("new"), F.lit(0)).cast("long").alias("defaults"))
        .withColumn("cumulative_default_rate", F.col("defaults") / F.col("accounts"))
        .select("cohort", "months_on_book", "accounts", "defaults", "cumulative_default_rate")
        .orderBy("cohort", "months_on_book")
    )


def as_of(statements: DataFrame) -> str | None:
    """The month of the data's latest statement (``YYYY-MM-01``): the tables' snapshot date."""
    from pyspark.sql import functions as F

    row = statements.agg(F.max(F.trunc(F.col("statement_date"), "month")).alias("m")).first()
    return None if row is None or row["m"] is None else row["m"].isoformat()
