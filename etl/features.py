"""curated -> features: one row per account and observation date, without leakage.

Pure module: DataFrame -> DataFrame functions only (no storage, no environment, no clock).

Two windows, both parameters (:class:`FeatureWindows`):

- **features** come only from events dated strictly before ``obs_date``, in the
  ``lookback_months`` calendar months that end with the month of ``obs_date - 1 day``
  (``m1`` = that month, ``m2`` the one before, ...). The date of an event is its business date
  where it has one (``statement_date`` for statements), else the UTC date of ``event_time``.
- **the label** is the worst ``default_flag`` of the outcomes observed in
  ``[obs_date, obs_date + performance_months)``; null when there is none (never imputed) and
  for scoring (``with_label=False``).

Population at ``obs_date``: accounts opened before it that had not already defaulted before it;
in a training panel (``min_history_months``), only those whose statements reach back that many
months (an account is a row of the panel every month it has enough history).

**The panel** (:func:`panel_observation_dates`): one observation date a month, from the first
month with a full lookback of statements to the last whose performance window the outcomes
cover, plus the current date (the month after the last statement: scoring, labels unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from riskstream import featuredefs, names
from riskstream.events import MERCHANT_CATEGORIES
from riskstream.featuredefs import attribute_name

KEY = ["account_id", "obs_date"]


@dataclass(frozen=True)
class FeatureWindows:
    """How far back features look and how far forward the label looks, in calendar months."""

    lookback_months: int = names.DEFAULT_LOOKBACK_MONTHS
    performance_months: int = names.DEFAULT_PERFORMANCE_MONTHS

    def __post_init__(self) -> None:
        if not 6 <= self.lookback_months <= 24:
            raise ValueError(f"lookback_months={self.lookback_months} must be between 6 and 24")
        if not 1 <= self.performance_months <= 24:
            raise ValueError(
                f"performance_months={self.performance_months} must be between 1 and 24"
            )


def _month_number(day: Column) -> Column:
    return F.year(day) * 12 + F.month(day)


def _month_index(as_of: Column) -> Column:
    """1 for the month of ``obs_date - 1 day``, 2 for the month before, ..."""
    return _month_number(F.date_sub(F.col("obs_date"), 1)) - _month_number(as_of) + 1


def _in_lookback(frame: DataFrame, obs: DataFrame, as_of: Column, months: int) -> DataFrame:
    """Pair each event with each observation date it may inform; add the month index ``k``."""
    paired = frame.withColumn("_as_of", as_of).crossJoin(F.broadcast(obs))
    paired = paired.where(F.col("_as_of") < F.col("obs_date"))
    paired = paired.withColumn("k", _month_index(F.col("_as_of")))
    return paired.where(F.col("k") <= months)


def observation_frame(spark_df: DataFrame, obs_dates: Sequence[date]) -> DataFrame:
    """A one-column DataFrame of observation dates (built from any DataFrame's session).

    Built from literals in the JVM: a DataFrame made from a Python list runs Python workers to
    read it, and the first of them to start cost a job seconds (a feature build otherwise runs
    no Python at all)."""
    if not obs_dates:
        raise ValueError("obs_dates is empty: give at least one observation date")
    dates = F.array(*[F.lit(d) for d in sorted(set(obs_dates))])
    return spark_df.sparkSession.range(1).select(F.explode(dates).alias("obs_date"))


def default_observation_date(statements: DataFrame, outcomes: DataFrame) -> date | None:
    """The first day of the month after the last statement month of accounts with outcomes.

    Taiwan replay: statements April..September 2005, outcomes observed 2005-10-31 -> 2005-10-01.
    A flat applicant table (no statements at all): the earliest outcome date, where the CSV
    mapping's ``observation_date`` puts the labels. None when there is no outcome either.
    """
    with_outcome = outcomes.select("account_id").distinct()
    last = statements.join(with_outcome, "account_id", "left_semi").agg(
        F.max("statement_date").alias("last")
    )
    row = last.select(F.add_months(F.trunc("last", "month"), 1).alias("obs")).first()
    if row is not None and row["obs"] is not None:
        return row["obs"]
    if statements.limit(1).count() > 0:  # statements, but none of an account with an outcome
        return None
    first = outcomes.agg(F.min("observed_date").alias("first")).first()
    return None if first is None else first["first"]


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def panel_dates(
    first_statement: date,
    last_statement: date,
    last_outcome: date,
    windows: FeatureWindows,
    min_history_months: int,
) -> list[date]:
    """Monthly observation dates (first days of months): from the month ``min_history_months``
    after the first statement's month to the last whose ``performance_months`` window ends by
    the end of the last outcome's month, then the current date (the month after the last
    statement). Pure date arithmetic."""
    first = _add_months(date(first_statement.year, first_statement.month, 1), min_history_months)
    covered = _add_months(date(last_outcome.year, last_outcome.month, 1), 1)
    last = _add_months(covered, -windows.performance_months)
    out = []
    day = first
    while day <= last:
        out.append(day)
        day = _add_months(day, 1)
    current = _add_months(date(last_statement.year, last_statement.month, 1), 1)
    return sorted({*out, current})


def panel_observation_dates(
    statements: DataFrame, outcomes: DataFrame, windows: FeatureWindows
) -> tuple[list[date], int]:
    """The training panel's observation dates and the history an account needs to be a row
    (``min_history_months``): the lookback when some date has a full lookback and a covered
    window; else (data too short for both) every date from the second month on, without the
    history rule, nor with a single labelled date (a snapshot such as Taiwan's keeps its
    population). ``([default_observation_date], 0)`` without statements (a flat applicant
    table), ``([], 0)`` when there is nothing to observe."""
    with_outcome = outcomes.select("account_id").distinct()
    bounds = statements.join(with_outcome, "account_id", "left_semi").agg(
        F.min("statement_date").alias("first"), F.max("statement_date").alias("last")
    )
    row = bounds.crossJoin(outcomes.agg(F.max("observed_date").alias("outcome"))).first()
    if row is None or row["first"] is None or row["outcome"] is None:
        derived = default_observation_date(statements, outcomes)
        return ([] if derived is None else [derived]), 0
    covered = _add_months(date(row["outcome"].year, row["outcome"].month, 1), 1)
    for history in (windows.lookback_months, 1):
        dates = panel_dates(row["first"], row["last"], row["outcome"], windows, history)
        labelled = [d for d in dates if _add_months(d, windows.performance_months) <= covered]
        if labelled:
            # one labelled date (Taiwan's snapshot): the population rule of a single date
            rule = history if history > 1 and len(labelled) > 1 else 0
            return dates, rule
    return dates, 0


def attribute_columns(opened: DataFrame) -> dict[str, str]:
    """CSV-replay attribute keys -> their Spark type ("double" when every value is numeric)."""
    keys = [
        r["key"]
        for r in opened.select(F.explode(F.map_keys("attributes")).alias("key"))
        .distinct()
        .orderBy("key")
        .collect()
    ]
    if not keys:
        return {}
    checks = []
    for i, key in enumerate(keys):
        value = F.col("attributes").getItem(key)
        checks.append((F.count(value) == F.count(value.cast("double"))).alias(f"c{i}"))
    row = opened.agg(*checks).first()
    assert row is not None
    return {key: ("double" if row[f"c{i}"] else "string") for i, key in enumerate(keys)}


def build_features(
    opened: DataFrame,
    statements: DataFrame,
    payments: DataFrame,
    purchases: DataFrame,
    outcomes: DataFrame,
    obs_dates: Sequence[date],
    windows: FeatureWindows | None = None,
    with_label: bool = True,
    attributes: dict[str, str] | None = None,
    labels_known_on: date | None = None,
    min_history_months: int = 0,
) -> DataFrame:
    """Curated tables -> the feature table (docs/CONTRACTS.md) for each observation date.

    ``min_history_months`` > 0 keeps an account at an observation date only when its first
    statement is at least that many months before it (the panel's lookback rule).

    ``attributes`` maps CSV-replay attribute keys to a type (see :func:`attribute_columns`); each
    becomes a column ``attr_<key>``. With ``labels_known_on``, a label is kept only where the
    performance window had ended by that date (an immature window would understate defaults).
    """
    windows = windows or FeatureWindows()
    months = windows.lookback_months
    obs = observation_frame(opened, obs_dates)

    population = _population(opened, outcomes, obs, attributes or {})
    if min_history_months > 0:
        population = population.join(
            _with_history(statements, obs, min_history_months), KEY, "left_semi"
        )
    monthly = _statements_and_payments(statements, payments, obs, months)
    spend = _spend(purchases, population.select(*KEY), obs, months)
    out = population.join(monthly, KEY, "left").join(spend, KEY, "left")
    out = _derived(out, months)
    label = (
        _label(outcomes, obs, windows.performance_months)
        if with_label
        else population.select(*KEY).withColumn("label", F.lit(None).cast("int"))
    )
    out = out.join(label, KEY, "left")
    if labels_known_on is not None:
        matured = F.add_months(F.col("obs_date"), windows.performance_months) <= F.lit(
            labels_known_on
        )
        out = out.withColumn("label", F.when(matured, F.col("label")))

    feature_columns = [c for c in out.columns if c not in (*KEY, "label", "source")]
    return out.select(
        F.col("account_id").cast("string"),
        F.col("obs_date").cast("date"),
        F.col("label").cast("int"),
        F.col("source").cast("string"),
        *feature_columns,
    )


def _population(
    opened: DataFrame, outcomes: DataFrame, obs: DataFrame, attributes: dict[str, str]
) -> DataFrame:
    first_open = Window.partitionBy("account_id").orderBy("event_time", "event_id")
    accounts = (
        opened.withColumn("_n", F.row_number().over(first_open)).where(F.col("_n") == 1)
    ).crossJoin(F.broadcast(obs))
    accounts = accounts.where(F.to_date("event_time") < F.col("obs_date"))
    defaulted_before = (
        outcomes.where(F.col("default_flag") == 1)
        .crossJoin(F.broadcast(obs))
        .where(F.col("observed_date") < F.col("obs_date"))
        .select(*KEY)
        .distinct()
    )
    accounts = accounts.join(defaulted_before, KEY, "left_anti")
    attribute_values = [
        F.col("attributes").getItem(key).cast(kind).alias(attribute_name(key))
        for key, kind in sorted(attributes.items())
    ]
    open_date = F.to_date("event_time")
    return accounts.select(
        *KEY,
        "source",
        F.floor(F.months_between("obs_date", open_date)).cast("int").alias("months_on_book"),
        F.col("credit_limit").alias("credit_limit_at_open"),
        "income",
        "age",
        "sex",
        "education",
        "marital_status",
        *attribute_values,
    )


def _with_history(statements: DataFrame, obs: DataFrame, months: int) -> DataFrame:
    """(account, obs_date) where the account's first statement falls at least ``months``
    months before the observation date (month index ``k >= months``)."""
    first = statements.groupBy("account_id").agg(F.min("statement_date").alias("_first"))
    paired = first.crossJoin(F.broadcast(obs)).where(F.col("_first") < F.col("obs_date"))
    return paired.where(_month_index(F.col("_first")) >= months).select(*KEY)


def _statements_and_payments(
    statements: DataFrame, payments: DataFrame, obs: DataFrame, months: int
) -> DataFrame:
    """Per account and obs_date: the last statement of each month and payments summed by month."""
    stmt = _in_lookback(statements, obs, F.col("statement_date"), months)
    # A corrected statement for the same month (later event_time) replaces the earlier one.
    latest = stmt.groupBy(*KEY, "k").agg(
        F.max(
            F.struct(
                "statement_date",
                "event_time",
                "balance",
                "minimum_due",
                "repayment_status",
                "credit_limit",
            )
        ).alias("s")
    )
    pay = _in_lookback(payments, obs, F.to_date("event_time"), months)
    paid = pay.groupBy(*KEY, "k").agg(F.sum("amount").alias("paid"))
    per_month = latest.join(paid, [*KEY, "k"], "full")
    aggs: list[Column] = []
    for k in range(1, months + 1):
        this = F.col("k") == k
        aggs += [
            F.max(F.when(this, F.col("s.balance"))).alias(f"bill_amt_m{k}"),
            F.max(F.when(this, F.col("s.minimum_due"))).alias(f"minimum_due_m{k}"),
            F.max(F.when(this, F.col("s.repayment_status"))).alias(f"repayment_status_m{k}"),
            F.coalesce(F.sum(F.when(this, F.col("paid"))), F.lit(0.0)).alias(f"pay_amt_m{k}"),
        ]
    aggs += [
        F.max("s").alias("_last_statement"),
        F.count("s").cast("int").alias("statement_count"),
        F.count(F.when(F.col("s.repayment_status") >= 1, 1)).cast("int").alias("delinquent_months"),
        F.max("s.repayment_status").alias("worst_delinquency"),
    ]
    wide = per_month.groupBy(*KEY).agg(*aggs)
    # The latest known limit: from the last statement that states one, else the opening limit.
    return wide.withColumn("statement_credit_limit", F.col("_last_statement.credit_limit")).drop(
        "_last_statement"
    )


def _spend(purchases: DataFrame, keys: DataFrame, obs: DataFrame, months: int) -> DataFrame:
    """Rolling 3- and 6-month spend and the spend mix, with window functions over month index.

    Each (account, obs_date) gets an anchor row at k = 1 with zero spend, so a window over
    ``k in [1, 3]`` at the anchor is exactly the last three months, with or without purchases.
    """
    bought = _in_lookback(purchases, obs, F.to_date("event_time"), months)
    category_sums = [
        F.sum(F.when(F.col("merchant_category") == c, F.col("amount")).otherwise(0.0)).alias(
            f"_spend_{c}"
        )
        for c in MERCHANT_CATEGORIES
    ]
    per_month = bought.groupBy(*KEY, "k").agg(
        F.sum("amount").alias("_spend"), F.count("amount").alias("_n"), *category_sums
    )
    value_columns = [c for c in per_month.columns if c not in (*KEY, "k")]
    anchors = keys.select(
        *KEY,
        F.lit(1).alias("k"),
        *[F.lit(0).cast(per_month.schema[c].dataType).alias(c) for c in value_columns],
    )
    series = per_month.withColumn("_anchor", F.lit(False)).unionByName(
        anchors.withColumn("_anchor", F.lit(True))
    )
    by_month = Window.partitionBy(*KEY).orderBy("k")
    last3 = by_month.rangeBetween(0, 2)
    last6 = by_month.rangeBetween(0, 5)
    rolled = series.select(
        *KEY,
        "_anchor",
        F.sum("_spend").over(last3).alias("spend_3m"),
        F.sum("_spend").over(last6).alias("spend_6m"),
        F.sum("_n").over(last6).alias("purchase_count_6m"),
        *[F.sum(f"_spend_{c}").over(last6).alias(f"_mix_{c}") for c in MERCHANT_CATEGORIES],
    ).where(F.col("_anchor"))
    total = F.col("spend_6m")
    return rolled.select(
        *KEY,
        "spend_3m",
        "spend_6m",
        (F.col("spend_6m") - F.col("spend_3m")).alias("spend_prev_3m"),
        F.col("purchase_count_6m").cast("int").alias("purchase_count_6m"),
        F.when(F.col("purchase_count_6m") > 0, total / F.col("purchase_count_6m")).alias(
            "avg_ticket_6m"
        ),
        *[
            F.when(total > 0, F.col(f"_mix_{c}") / total).alias(f"spend_share_{c}")
            for c in MERCHANT_CATEGORIES
        ],
    )


class SparkOps:
    """The Spark Column backend of :mod:`riskstream.featuredefs` (plain Column expressions)."""

    def col(self, name: str) -> Column:
        return F.col(name)

    def lit(self, value: float | int | bool) -> Column:
        return F.lit(value)

    def when(self, condition: Column, value: Column, otherwise: Column | None = None) -> Column:
        out = F.when(condition, value)
        return out if otherwise is None else out.otherwise(otherwise)

    def coalesce(self, *values: Column) -> Column:
        return F.coalesce(*values)

    def is_not_null(self, value: Column) -> Column:
        return value.isNotNull()

    def is_true(self, condition: Column) -> Column:
        return F.coalesce(condition, F.lit(False))

    def greatest(self, *values: Column) -> Column:
        return F.greatest(*values)

    def sqrt(self, value: Column) -> Column:
        return F.sqrt(value)

    def as_int(self, value: Column) -> Column:
        return value.cast("int")


SPARK_OPS = SparkOps()


def _derived(frame: DataFrame, months: int) -> DataFrame:
    """The derived and history features, from the definitions shared with the scoring API."""
    frame = frame.fillna(featuredefs.zero_when_absent(months))
    frame = frame.withColumn("credit_limit", featuredefs.credit_limit(SPARK_OPS))
    derived = featuredefs.derived(SPARK_OPS, months)
    frame = frame.select("*", *[expr.alias(name) for name, expr in derived.items()])
    return frame.drop(*[f"minimum_due_m{k}" for k in range(1, months + 1)])


def _label(outcomes: DataFrame, obs: DataFrame, performance_months: int) -> DataFrame:
    paired = outcomes.crossJoin(F.broadcast(obs)).where(
        (F.col("observed_date") >= F.col("obs_date"))
        & (F.col("observed_date") < F.add_months(F.col("obs_date"), performance_months))
    )
    return paired.groupBy(*KEY).agg(F.max("default_flag").cast("int").alias("label"))
