"""The training panel on a hand-built portfolio: its observation dates, the lookback rule (rows
per account) and the label window (docs/training.md, The observation panel)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from etl import chain, features
from tests.etl.helpers import line, lines_frame, opened, outcome, statement

pytestmark = pytest.mark.integration  # Spark: a JVM

WINDOWS = features.FeatureWindows(lookback_months=6, performance_months=3)
MONTH_ENDS = [date(2024, m, calendar.monthrange(2024, m)[1]).isoformat() for m in range(1, 13)]


def _portfolio() -> list[dict[str, Any]]:
    """B1: statements and outcomes Jan-Dec 2024, defaults in December (nothing after).
    B2: opened in March, statements and outcomes from April, never defaults."""
    events: list[dict[str, Any]] = [
        opened(1, "B1", "2023-06-01"),
        opened(2, "B2", "2024-03-15"),
    ]
    n = 10
    for i, month_end in enumerate(MONTH_ENDS):
        n += 4
        events.append(statement(n, "B1", month_end, 100.0 * (i + 1), status=0, minimum_due=25))
        events.append(outcome(n + 1, "B1", month_end, int(month_end == "2024-12-31")))
        if i >= 3:
            events.append(statement(n + 2, "B2", month_end, 50.0, status=0, minimum_due=25))
            events.append(outcome(n + 3, "B2", month_end, 0))
    return events


@pytest.fixture(scope="module")
def tables(spark: SparkSession) -> dict[str, DataFrame]:
    rows = [(line(e), str(e["event_time"])[:10], "f") for e in _portfolio()]
    lines = lines_frame(spark, rows)
    return chain.curate(lines, datetime(2026, 1, 1, tzinfo=UTC))


def test_panel_dates_cover_a_full_lookback_and_a_covered_window_then_today(
    tables: dict[str, DataFrame],
) -> None:
    dates, history = chain.panel(tables, WINDOWS)
    # first statement January + 6 months = July; the outcomes cover December, so the last
    # 3-month window starts in October; then the current date (after the last statement)
    assert dates == [
        date(2024, 7, 1),
        date(2024, 8, 1),
        date(2024, 9, 1),
        date(2024, 10, 1),
        date(2025, 1, 1),
    ]
    assert history == 6


def test_rows_per_account_follow_the_lookback_rule_and_the_label_window(
    tables: dict[str, DataFrame],
) -> None:
    dates, history = chain.panel(tables, WINDOWS)
    frame = chain.features_of(tables, dates, WINDOWS, min_history_months=history)
    rows = {(r["account_id"], r["obs_date"]): r["label"] for r in frame.collect()}
    assert rows == {
        # B1: every panel month; the label is 1 only where December is inside [obs, obs + 3m)
        ("B1", date(2024, 7, 1)): 0,
        ("B1", date(2024, 8, 1)): 0,
        ("B1", date(2024, 9, 1)): 0,
        ("B1", date(2024, 10, 1)): 1,
        # (not in January 2025: it defaulted before)
        # B2: first statement April 2024, six months of history from October on
        ("B2", date(2024, 10, 1)): 0,
        ("B2", date(2025, 1, 1)): None,  # the current date: no outcome yet, label unknown
    }


def test_short_data_relax_the_lookback_rule(tables: dict[str, DataFrame]) -> None:
    """Data too short for a full lookback and the window: every date from the second month
    with a covered window, no history rule (a short test run still trains)."""
    long_window = features.FeatureWindows(lookback_months=6, performance_months=9)
    dates, history = chain.panel(tables, long_window)
    assert dates == [date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1), date(2025, 1, 1)]
    assert history == 0


@pytest.mark.parametrize(
    ("first", "last", "outcome_day", "history", "expected"),
    [
        # Taiwan: statements April-September 2005, outcomes 2005-10-31, a one-month window
        (date(2005, 4, 30), date(2005, 9, 30), date(2005, 10, 31), 6, [date(2005, 10, 1)]),
        # the synthetic default: 24 months from January 2024, a 12-month window
        (
            date(2024, 1, 31),
            date(2025, 12, 31),
            date(2025, 12, 31),
            6,
            [date(2024, m, 1) for m in range(7, 13)] + [date(2025, 1, 1), date(2026, 1, 1)],
        ),
    ],
)
def test_panel_dates_arithmetic(
    first: date, last: date, outcome_day: date, history: int, expected: list[date]
) -> None:
    windows = features.FeatureWindows(
        lookback_months=6, performance_months=1 if first.year == 2005 else 12
    )
    assert features.panel_dates(first, last, outcome_day, windows, history) == expected
