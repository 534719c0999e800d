"""Raw application facts -> the feature row the pipeline would build (pure, numpy).

``POST /score``'s raw form sends what the event contract carries about an account: the
``account_opened`` facts (opening date, limit, income, ...), the monthly statements, the
payments and optionally the purchases. This module turns them into the feature table's row at an
observation date with the features job's rules:

- an event informs the features only when dated strictly before ``obs_date`` and within the
  lookback; its month lag is :func:`riskstream.featuredefs.month_index`;
- per month lag: the latest statement (later ``statement_date``; on the same date the later one
  in the list, as a correction replaces the earlier statement), payments and purchases summed;
- the derived and history features are :func:`riskstream.featuredefs.derived`, the very
  definitions the Spark job runs, here over numpy arrays (NaN = null), one array element per
  application of the request.

The default observation date is the pipeline's: the first day of the month after the last
statement (:func:`riskstream.featuredefs.default_obs_date`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np

from riskstream import featuredefs
from riskstream.events import MERCHANT_CATEGORIES

ACCOUNT_FACTS = ("credit_limit", "income", "age", "sex", "education", "marital_status")


class NumpyOps:
    """The numpy backend of :mod:`riskstream.featuredefs`: float arrays, NaN for null."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns = columns

    def col(self, name: str) -> np.ndarray:
        return self.columns[name]

    def lit(self, value: float | int | bool) -> Any:
        return value

    def when(self, condition: Any, value: Any, otherwise: Any = None) -> np.ndarray:
        return np.where(condition, value, np.nan if otherwise is None else otherwise)

    def coalesce(self, *values: Any) -> np.ndarray:
        out = np.asarray(values[0], dtype=np.float64)
        for value in values[1:]:
            out = np.where(np.isnan(out), value, out)
        return out

    def is_not_null(self, value: Any) -> np.ndarray:
        return ~np.isnan(value)

    def is_true(self, condition: Any) -> np.ndarray:
        return np.asarray(condition, dtype=bool)  # a comparison with NaN is already False

    def greatest(self, *values: Any) -> np.ndarray:
        return functools.reduce(np.fmax, values)  # fmax skips NaN, as SQL's GREATEST skips null

    def sqrt(self, value: Any) -> np.ndarray:
        return np.sqrt(value)

    def as_int(self, value: Any) -> Any:
        return value


class ScalarOps(NumpyOps):
    """The same backend for one application: numpy float64 scalars instead of one-element
    arrays. The same IEEE operations in the same order (a float64 scalar divides, compares and
    takes a square root exactly as an array element does), at a fraction of an array
    operation's cost; ``build_rows`` uses it for a request of one application."""

    def when(self, condition: Any, value: Any, otherwise: Any = None) -> Any:
        if condition:
            return np.float64(value)
        return np.float64(np.nan if otherwise is None else otherwise)

    def coalesce(self, *values: Any) -> Any:
        for value in values:
            if not np.isnan(value):
                return np.float64(value)
        return np.float64(np.nan)

    def is_not_null(self, value: Any) -> Any:
        return not np.isnan(value)

    def is_true(self, condition: Any) -> Any:
        return bool(condition)


def lookback_for(features: Sequence[str]) -> int:
    """The lookback the champion was built with: at least the pipeline default, more when it
    uses a later month lag (``bill_amt_m12``...)."""
    lags = [int(name.rsplit("_m", 1)[1]) for name in features if name.rsplit("_m", 1)[-1].isdigit()]
    return max([featuredefs.DEFAULT_LOOKBACK_MONTHS, *lags])


def observation_date(application: Mapping[str, Any]) -> date:
    """The request's ``obs_date``, else the pipeline's default for these facts."""
    given = application.get("obs_date")
    if given is not None:
        return given  # type: ignore[no-any-return]
    statements = [s["statement_date"] for s in application.get("statements") or ()]
    others = [application["opened_on"]]
    others += [p["date"] for p in application.get("payments") or ()]
    others += [p["date"] for p in application.get("purchases") or ()]
    return featuredefs.default_obs_date(statements, others)


def _monthly(app: Mapping[str, Any], obs: date, months: int) -> dict[str, Any]:
    def lag(day: date) -> int | None:
        if day >= obs:
            return None
        k = featuredefs.month_index(obs, day)
        return k if k <= months else None

    latest: dict[int, tuple[tuple[date, int], Mapping[str, Any]]] = {}
    for i, s in enumerate(app.get("statements") or ()):
        k = lag(s["statement_date"])
        key = (s["statement_date"], i)
        if k is not None and (k not in latest or key > latest[k][0]):
            latest[k] = (key, s)
    paid = [0.0] * (months + 1)
    for p in app.get("payments") or ():
        k = lag(p["date"])
        if k is not None:
            paid[k] += p["amount"]
    row: dict[str, Any] = {}
    statuses = []
    for k in range(1, months + 1):
        s = latest[k][1] if k in latest else None
        status = None if s is None else s.get("repayment_status")
        row[f"bill_amt_m{k}"] = None if s is None else s["balance"]
        row[f"minimum_due_m{k}"] = None if s is None else s["minimum_due"]
        row[f"repayment_status_m{k}"] = status
        row[f"pay_amt_m{k}"] = paid[k]
        if s is not None and status is not None:
            statuses.append(status)
    last = max(latest.values(), key=lambda pair: pair[0])[1] if latest else None
    row["statement_count"] = len(latest)
    row["delinquent_months"] = sum(1 for s in statuses if s >= 1)
    row["worst_delinquency"] = max(statuses) if statuses else None
    row["statement_credit_limit"] = None if last is None else last.get("credit_limit")

    spend = {k: 0.0 for k in range(1, months + 1)}
    count = 0
    mix = dict.fromkeys(MERCHANT_CATEGORIES, 0.0)
    for p in app.get("purchases") or ():
        k = lag(p["date"])
        if k is None:
            continue
        spend[k] += p["amount"]
        if k <= 6:
            count += p.get("count", 1)  # the live state sends a month's purchases summed
            mix[p["merchant_category"]] += p["amount"]
    spend_3m = sum(spend[k] for k in range(1, 4))
    spend_6m = sum(spend[k] for k in range(1, 7))
    row["spend_3m"] = spend_3m
    row["spend_6m"] = spend_6m
    row["spend_prev_3m"] = spend_6m - spend_3m
    row["purchase_count_6m"] = count
    row["avg_ticket_6m"] = spend_6m / count if count > 0 else None
    for c in MERCHANT_CATEGORIES:
        row[f"spend_share_{c}"] = mix[c] / spend_6m if spend_6m > 0 else None
    return row


def _population(app: Mapping[str, Any], obs: date) -> dict[str, Any]:
    row: dict[str, Any] = {
        "months_on_book": featuredefs.months_on_book(obs, app["opened_on"]),
        "credit_limit_at_open": app.get("credit_limit"),
    }
    for fact in ACCOUNT_FACTS[1:]:
        row[fact] = app.get(fact)
    for key, value in (app.get("attributes") or {}).items():
        row[featuredefs.attribute_name(key)] = value
    return row


def _null(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def build_rows(
    applications: Sequence[Mapping[str, Any]], months: int = featuredefs.DEFAULT_LOOKBACK_MONTHS
) -> list[dict[str, Any]]:
    """Each application's feature row (the feature table's columns; null as None), with its
    ``obs_date``. ``opened_on`` must be before the observation date (the caller checks)."""
    if not applications:
        return []
    rows = []
    for app in applications:
        obs = observation_date(app)
        rows.append(
            {
                "obs_date": obs,
                **_population(app, obs),
                **_monthly(app, obs, months),
            }
        )
    numeric = ["statement_credit_limit", "credit_limit_at_open"]
    for k in range(1, months + 1):
        numeric += [f"bill_amt_m{k}", f"pay_amt_m{k}", f"minimum_due_m{k}"]
        numeric.append(f"repayment_status_m{k}")
    if len(rows) == 1:  # one application: scalars (see ScalarOps)
        (row,) = rows
        scalars: dict[str, Any] = {
            name: np.float64(np.nan if row[name] is None else row[name]) for name in numeric
        }
        ops: NumpyOps = ScalarOps(scalars)
        with np.errstate(all="ignore"):
            scalars["credit_limit"] = featuredefs.credit_limit(ops)
            derived = featuredefs.derived(ops, months)
        row["credit_limit"] = _null(scalars["credit_limit"])
        for name, value in derived.items():
            row[name] = _null(value)
        for k in range(1, months + 1):
            del row[f"minimum_due_m{k}"]
        return rows
    columns = {
        name: np.asarray([np.nan if r[name] is None else r[name] for r in rows], dtype=np.float64)
        for name in numeric
    }
    ops = NumpyOps(columns)
    with np.errstate(all="ignore"):
        columns["credit_limit"] = featuredefs.credit_limit(ops)
        derived = featuredefs.derived(ops, months)
    # each column to Python floats once (not one numpy scalar per row and column)
    filled = {
        name: np.asarray(np.broadcast_to(values, (len(rows),)), dtype=np.float64).tolist()
        for name, values in (("credit_limit", columns["credit_limit"]), *derived.items())
    }
    for i, row in enumerate(rows):
        for name, values in filled.items():
            value = values[i]
            row[name] = None if value != value else value  # NaN -> None
        for k in range(1, months + 1):
            del row[f"minimum_due_m{k}"]
    return rows
