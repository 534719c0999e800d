"""Build raw event lines and gzip JSON-lines files the way the landing consumer writes them."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskstream.events import new_event, serialize

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PORTFOLIO = "test"  # the envelope source of every event built here


def eid(n: int) -> str:
    """A deterministic UUID-shaped event id."""
    return f"00000000-0000-4000-8000-{n:012d}"


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def opened(n: int, account: str, day: str, **payload: Any) -> dict[str, Any]:
    body = {"credit_limit": 10000.0, "age": 35, "sex": "2", "education": "1"}
    body.update(payload)
    return new_event("account_opened", account, at(day), body, PORTFOLIO, event_id=eid(n))


def statement(
    n: int,
    account: str,
    month_end: str,
    balance: float,
    status: int | None = 0,
    minimum_due: float = 100.0,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "statement_date": month_end,
        "balance": balance,
        "minimum_due": minimum_due,
        "due_date": month_end,
        "repayment_status": status,
    }
    return new_event("statement", account, at(month_end, 23), payload, PORTFOLIO, event_id=eid(n))


def payment(n: int, account: str, day: str, amount: float) -> dict[str, Any]:
    return new_event("payment", account, at(day), {"amount": amount}, PORTFOLIO, event_id=eid(n))


def purchase(
    n: int, account: str, day: str, amount: float, category: str = "grocery"
) -> dict[str, Any]:
    payload = {"amount": amount, "merchant_category": category}
    return new_event("purchase", account, at(day), payload, PORTFOLIO, event_id=eid(n))


def outcome(n: int, account: str, observed: str, flag: int) -> dict[str, Any]:
    payload = {"default_flag": flag, "observed_date": observed}
    return new_event("outcome", account, at(observed), payload, PORTFOLIO, event_id=eid(n))


def line(event: Mapping[str, Any] | str) -> str:
    return event if isinstance(event, str) else serialize(event).decode()


def dt_of(event: Mapping[str, Any]) -> str:
    return str(event["event_time"])[:10]


LINES_SCHEMA = "value string, dt string, source_file string"


def lines_frame(spark: SparkSession, rows: Iterable[tuple[str, str, str]]) -> DataFrame:
    """Raw lines (``value``, ``dt``, ``source_file``), as the ETL reads them from files, in a
    DataFrame made through Arrow (the test session enables it): one made from a Python list
    runs Python workers to read it, a few tenths of a second each time."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=["value", "dt", "source_file"], dtype=object)
    return spark.createDataFrame(frame, LINES_SCHEMA)


def write_raw(
    base: Path,
    events: Iterable[Mapping[str, Any] | str],
    dt: str | None = None,
    name: str = "part-0000.jsonl.gz",
    hr: int = 12,
) -> list[Path]:
    """Write events under ``base/dt=.../hr=HH/name``, the arrival layout of the landing consumer
    (dt from each event's time unless given: as if each arrived on its day)."""
    by_dt: dict[str, list[str]] = {}
    for event in events:
        if dt is None and isinstance(event, str):
            # no date.today() fallback: a test's partitions must not depend on the day it runs
            raise ValueError(f"write_raw needs dt= for the raw line {event!r}")
        day = dt or dt_of(event)  # type: ignore[arg-type]
        by_dt.setdefault(day, []).append(line(event))
    written = []
    for day, lines in sorted(by_dt.items()):
        folder = base / f"dt={day}" / f"hr={hr:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        written.append(path)
    return written


MONTH_ENDS = ["2005-07-31", "2005-08-31", "2005-09-30"]


def small_history() -> list[Any]:
    """Three accounts over three months, one duplicate, one bad line, one unknown account."""
    events: list[Any] = []
    n = 0
    for a in range(3):
        account = f"A{a}"
        events.append(opened(n := n + 1, account, "2005-06-01"))
        for i, month_end in enumerate(MONTH_ENDS):
            events.append(statement(n := n + 1, account, month_end, 100.0 * (i + a + 1)))
            events.append(payment(n := n + 1, account, month_end, 10.0 * (a + 1)))
            events.append(purchase(n := n + 1, account, month_end, 5.0 * (i + 1)))
        events.append(outcome(n := n + 1, account, "2005-10-31", a % 2))
    events.append(events[2])  # a duplicate of A0's first statement
    events.append(purchase(n + 1, "Z9", "2005-07-31", 3.0))  # no such account
    return events


def upload_events(s3: Any, bucket: str, events: list[Any], dt: str, name: str) -> None:
    """Land ``events`` as one gzip JSON-lines object under the arrival hour ``dt=/hr=12``."""
    body = gzip.compress(("\n".join(line(e) for e in events) + "\n").encode())
    s3.put_object(Bucket=bucket, Key=f"events/dt={dt}/hr=12/{name}", Body=body)


def upload_by_day(s3: Any, bucket: str, events: list[Any]) -> list[str]:
    """Land ``events`` as one object per day they happened on (as if each arrived that day);
    returns those days."""
    by_dt: dict[str, list[Any]] = {}
    for event in events:
        by_dt.setdefault(dt_of(event), []).append(event)
    for day, batch in by_dt.items():
        upload_events(s3, bucket, batch, day, "part-0.jsonl.gz")
    return sorted(by_dt)


# The features of the worked example account A1 (limit 10,000; six statements of 1,000..6,000 with
# statuses -1..4; payments 100..600; six purchases): what every backend of the feature
# definitions must compute (tests/etl/test_features.py with Spark, tests/serving with numpy).
A1_FEATURES: dict[str, Any] = {
    **{f"bill_amt_m{k}": 1000.0 * (7 - k) for k in range(1, 7)},
    **{f"pay_amt_m{k}": 100.0 * (7 - k) for k in range(1, 7)},
    **{f"repayment_status_m{k}": 5 - k for k in range(1, 7)},
    "delinquent_months": 4,
    "worst_delinquency": 4,
    "utilisation_m1": 0.6,
    "utilisation_avg_3m": 0.5,
    "utilisation_avg_6m": 0.35,
    "utilisation_trend_3m": 0.2,
    "pay_to_bill_m1": 600 / 5000,
    "pay_to_bill_avg": 2000 / 15000,
    # minimum due 350: the payments in m4 (300) and m5 (200) fell short of the next minimum
    "missed_minimum_count": 2,
    "spend_3m": 150.0,
    "spend_6m": 210.0,
    "spend_prev_3m": 60.0,
    "purchase_count_6m": 6,
    "spend_share_grocery": 120 / 210,
    "spend_share_travel": 0.0,
    "months_on_book": 7,
    "attr_region": "N",
    # statement-history evidence (statuses 4, 3, 2, 1, 0, -1 from m1)
    "months_since_delinquency": 1,
    "longest_delinquent_run": 4,
    "paid_in_full_m1": 0,
    "paid_in_full_count": 0,
    "unpaid_to_limit_m1": (6000 - 600) / 10000,
    "unpaid_to_limit_avg": (21000 - 2100) / 6 / 10000,
    "bill_growth_1m": 0.1,
    "bill_volatility": 0.1 * (35 / 12) ** 0.5,
    "status_delta_1m": 1,
    "status_delta_3m": 2,
}


def assert_features(row: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Every expected feature, floats to a relative 1e-6, the rest exactly; all wrong ones named."""
    import pytest

    wrong = {
        name: (row.get(name), want)
        for name, want in expected.items()
        if not (
            row.get(name) == pytest.approx(want)
            if isinstance(want, float)
            else row.get(name) == want
        )
    }
    assert not wrong, f"features (got, expected): {wrong}"
