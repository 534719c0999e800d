"""The feature definitions, written once, run by the Spark features job and by the scoring API.

The derived and statement-history features (utilisation, payment ratios, delinquency runs, ...)
are functions over a small operations interface, :class:`Ops`: ``etl.features`` runs them with
Spark Columns (so the features job computes them through this module, as Column expressions, no
UDF), ``serving.rawfeatures`` runs them with numpy arrays (NaN = null) for ``POST /score``'s raw
application form. Arithmetic and comparisons are the values' own operators (Columns and arrays
both have them, in the same evaluation order), so both backends do the same floating-point
operations. Only what differs between the two (null handling) goes through ``ops``.

The month bucketing rules of the features job (which month lag an event falls into, months on
book, the default observation date) are here too, as pure Python over dates, for the API; a test
checks them against the Spark job on real events.

Foundation module: standard library only (no pandas, numpy or pyspark at import time).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Protocol

DEFAULT_LOOKBACK_MONTHS = 6  # etl.features.FeatureWindows' default
PAID_IN_FULL_TOLERANCE = 0.005  # half a cent: a payment this close to the bill paid it in full


class Ops(Protocol):
    """What a backend supplies: named inputs, literals and the null-aware operations."""

    def col(self, name: str) -> Any:
        """The input named ``name`` (a Column, an array)."""

    def lit(self, value: float | int | bool) -> Any:
        """A constant."""

    def when(self, condition: Any, value: Any, otherwise: Any = None) -> Any:
        """``value`` where ``condition`` is true, else ``otherwise`` (null when None); a null
        condition counts as false."""

    def coalesce(self, *values: Any) -> Any:
        """The first non-null value."""

    def is_not_null(self, value: Any) -> Any:
        """True where ``value`` is not null."""

    def is_true(self, condition: Any) -> Any:
        """A condition whose null is false."""

    def greatest(self, *values: Any) -> Any:
        """The largest non-null value (nulls skipped, as SQL's GREATEST)."""

    def sqrt(self, value: Any) -> Any:
        """Square root."""

    def as_int(self, value: Any) -> Any:
        """The value as an integer feature (nulls stay null)."""


def zero_when_absent(months: int) -> dict[str, float | int]:
    """Sums over no events are zero (an account with no payment paid nothing); levels such as a
    bill or a repayment status stay null when there was no statement."""
    return {
        **{f"pay_amt_m{k}": 0.0 for k in range(1, months + 1)},
        "statement_count": 0,
        "delinquent_months": 0,
    }


def credit_limit(ops: Ops) -> Any:
    """The latest known limit: the last statement's, else the opening limit."""
    return ops.coalesce(ops.col("statement_credit_limit"), ops.col("credit_limit_at_open"))


def ratio(ops: Ops, numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, null when the denominator is not positive (no guessing)."""
    return ops.when(denominator > 0, numerator / denominator)


def mean(ops: Ops, values: Sequence[Any]) -> Any:
    """Mean of the non-null values, null when all are null."""
    flags = (ops.when(ops.is_not_null(v), ops.lit(1), ops.lit(0)) for v in values)
    present = sum(flags, ops.lit(0))
    total = sum((ops.coalesce(v, ops.lit(0.0)) for v in values), ops.lit(0.0))
    return ops.when(present > 0, total / present)


def derived(ops: Ops, months: int) -> dict[str, Any]:
    """The derived features (name -> expression), in the feature table's column order.

    Inputs: ``bill_amt_m{k}``, ``pay_amt_m{k}`` (zero when absent), ``minimum_due_m{k}``,
    ``repayment_status_m{k}`` for k = 1..months, and ``credit_limit`` (:func:`credit_limit`).
    """
    bill = {k: ops.col(f"bill_amt_m{k}") for k in range(1, months + 1)}
    pay = {k: ops.col(f"pay_amt_m{k}") for k in range(1, months + 1)}
    limit = ops.col("credit_limit")
    util = {k: ratio(ops, bill[k], limit) for k in range(1, months + 1)}
    out: dict[str, Any] = {
        "utilisation_m1": util[1],
        "utilisation_avg_3m": ratio(ops, mean(ops, [bill[k] for k in range(1, 4)]), limit),
        "utilisation_avg_6m": ratio(ops, mean(ops, [bill[k] for k in range(1, 7)]), limit),
        "utilisation_trend_3m": util[1] - util[3],
        "utilisation_trend_6m": util[1] - util[6],
    }
    # The payment made in month k settles the statement of month k + 1.
    for k in range(1, months):
        out[f"pay_to_bill_m{k}"] = ratio(ops, pay[k], bill[k + 1])
    paid = sum((pay[k] for k in range(1, months)), ops.lit(0.0))
    billed = sum((ops.greatest(bill[k], ops.lit(0.0)) for k in range(2, months + 1)), ops.lit(0.0))
    out["pay_to_bill_avg"] = ratio(ops, paid, billed)
    missed = [
        ops.when(
            (ops.col(f"minimum_due_m{k + 1}") > 0) & (pay[k] < ops.col(f"minimum_due_m{k + 1}")),
            ops.lit(1),
            ops.lit(0),
        )
        for k in range(1, months)
    ]
    out["missed_minimum_count"] = sum(missed, ops.lit(0))
    out.update(history(ops, months, util))
    return out


def history(ops: Ops, months: int, util: dict[int, Any]) -> dict[str, Any]:
    """Evidence from the statement history known to carry signal in card-default data.

    - ``months_since_delinquency``: the most recent month k with repayment status >= 1 (1 = the
      last month), null when none in the lookback; ``longest_delinquent_run``: the longest run
      of consecutive delinquent months;
    - ``paid_in_full_m1`` / ``paid_in_full_count``: the payment made in month k covered the
      positive statement of month k + 1 (the one it settles);
    - ``unpaid_to_limit_m1`` / ``unpaid_to_limit_avg``: (bill - payment) / limit, last month and
      the mean over the lookback;
    - ``bill_growth_1m``: (bill m1 - bill m2) / limit; ``bill_volatility``: the standard deviation
      of the monthly utilisation;
    - ``status_delta_1m`` / ``status_delta_3m``: repayment status m1 minus m2 / m3.
    """
    status = {k: ops.col(f"repayment_status_m{k}") for k in range(1, months + 1)}
    bill = {k: ops.col(f"bill_amt_m{k}") for k in range(1, months + 1)}
    pay = {k: ops.col(f"pay_amt_m{k}") for k in range(1, months + 1)}
    limit = ops.col("credit_limit")
    late = {k: ops.is_true(status[k] >= 1) for k in status}
    since = ops.coalesce(*[ops.when(late[k], ops.lit(k)) for k in range(1, months + 1)])
    run: Any = ops.lit(0)
    longest: Any = ops.lit(0)
    for k in range(1, months + 1):
        run = ops.when(late[k], run + 1, ops.lit(0))
        longest = ops.greatest(longest, run)
    full = {
        k: ops.when(
            (bill[k + 1] > 0) & (pay[k] >= bill[k + 1] - PAID_IN_FULL_TOLERANCE),
            ops.lit(1),
            ops.lit(0),
        )
        for k in range(1, months)
    }
    unpaid = [ratio(ops, bill[k] - pay[k], limit) for k in range(1, months + 1)]
    utils = [util[k] for k in range(1, months + 1)]
    mean_util = mean(ops, utils)
    mean_sq = mean(ops, [u * u for u in utils])
    return {
        "months_since_delinquency": ops.as_int(since),
        "longest_delinquent_run": ops.as_int(longest),
        "paid_in_full_m1": ops.as_int(full[1]),
        "paid_in_full_count": ops.as_int(sum(full.values(), ops.lit(0))),
        "unpaid_to_limit_m1": unpaid[0],
        "unpaid_to_limit_avg": mean(ops, unpaid),
        "bill_growth_1m": ratio(ops, bill[1] - bill[2], limit),
        "bill_volatility": ops.when(
            ops.is_not_null(mean_util),
            ops.sqrt(ops.greatest(mean_sq - mean_util * mean_util, ops.lit(0.0))),
        ),
        "status_delta_1m": status[1] - status[2],
        "status_delta_3m": status[1] - status[3],
    }


# ---- the month rules of the features job, over Python dates -------------------------------------
def month_number(day: date) -> int:
    return day.year * 12 + day.month


def month_index(obs_date: date, day: date) -> int:
    """The month lag of an event dated ``day`` at ``obs_date``: 1 for the month of
    ``obs_date - 1 day``, 2 for the month before, ... (``etl.features._month_index``). An event
    informs the features only when ``day < obs_date`` and its lag is at most the lookback."""
    return month_number(obs_date - timedelta(days=1)) - month_number(day) + 1


def _last_day(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def months_on_book(obs_date: date, opened_on: date) -> int:
    """``floor(months_between(obs_date, opened_on))`` with Spark's months_between: whole
    months when both days are the same day of month or both month ends, else the day difference
    counts in 31-day months."""
    whole = (obs_date.year - opened_on.year) * 12 + obs_date.month - opened_on.month
    if obs_date.day == opened_on.day or (_last_day(obs_date) and _last_day(opened_on)):
        return whole
    return whole if obs_date.day > opened_on.day else whole - 1


def default_obs_date(statement_dates: Sequence[date], other_dates: Sequence[date]) -> date:
    """The first day of the month after the last statement (the pipeline's default observation
    date, ``etl.features.default_observation_date``); without statements, the first day of the
    month after the latest of ``other_dates`` (the opening, payments, purchases)."""
    last = max(statement_dates) if statement_dates else max(other_dates)
    return date(last.year + last.month // 12, last.month % 12 + 1, 1)


def attribute_name(key: str) -> str:
    """A CSV header -> a safe feature column name (``attr_`` + lower snake case)."""
    return "attr_" + (re.sub(r"[^0-9a-zA-Z]+", "_", key).strip("_").lower() or "unnamed")
