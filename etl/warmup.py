"""Warm a Spark session up: both ETL jobs over a small built-in portfolio in a scratch folder.

I/O module. A fresh JVM runs a job two to three times slower than a warm one: Spark's SQL engine,
the Parquet and JSON readers and the generated code are interpreted until the JIT compiler has
seen them run. The warm session (:mod:`etl.session_server`) calls :func:`warm_up` once at start,
while the DAG is still producing and landing events, so the DAG's first Spark task runs on a
warm JVM; ``benchmarks/bench_etl.py`` calls the same function so that its figure is the one the
DAG sees. Nothing here touches the cloud: the raw, curated, quarantine and feature folders are in
a temporary directory, deleted afterwards.

The portfolio (:func:`warmup_lines`) is deterministic and exercises every path of the jobs:
all five event types, late payers, a duplicate, an event of an unknown account and a line that is
not JSON (so the quarantine is written too).
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskstream.events import MERCHANT_CATEGORIES, new_event, serialize
from riskstream.settings import Settings

WARMUP_PORTFOLIO = "warmup"  # the built-in events' portfolio (their envelope source)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

WARMUP_ACCOUNTS = 200
WARMUP_MONTHS = 12
WARMUP_START = date(2024, 1, 1)  # the first statement month of the portfolio
RUN_DATE = "2025-06-01"  # the jobs' run date: after the last statement and outcome


def _month_end(start: date, months: int) -> date:
    first = date(
        start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1
    )
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def warmup_lines(accounts: int = WARMUP_ACCOUNTS, months: int = WARMUP_MONTHS) -> list[bytes]:
    """The warm-up portfolio as raw event lines (deterministic: fixed ids, times and amounts)."""
    events: list[dict[str, Any]] = []
    n = 0

    def event(kind: str, account: str, moment: datetime, payload: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        eid = f"00000000-0000-4000-9000-{n:012d}"
        events.append(new_event(kind, account, moment, payload, WARMUP_PORTFOLIO, event_id=eid))

    for a in range(accounts):
        account = f"W{a:05d}"
        limit = 1000.0 * (1 + a % 20)
        opened_on = WARMUP_START - timedelta(days=31 * (1 + a % 30))
        event(
            "account_opened",
            account,
            _at(opened_on),
            {"credit_limit": limit, "income": 20000.0 + 97.0 * a, "education": str(1 + a % 4)},
        )
        late = a % 7 == 0  # one account in seven falls behind and defaults
        balance = 0.1 * limit
        for m in range(months):
            end = _month_end(WARMUP_START, m)
            for p in range(2):
                category = MERCHANT_CATEGORIES[(a + m + p) % len(MERCHANT_CATEGORIES)]
                amount = round(5.0 + (a * 7 + m * 3 + p) % 300, 2)
                event(
                    "purchase",
                    account,
                    _at(end - timedelta(days=10 + 5 * p)),
                    {"amount": amount, "merchant_category": category},
                )
                balance += amount
            status = min(m // 3, 9) if late else (-1 if a % 3 == 0 else 0)
            event(
                "statement",
                account,
                _at(end, 23),
                {
                    "statement_date": end.isoformat(),
                    "balance": round(balance, 2),
                    "minimum_due": round(0.05 * balance, 2),
                    "due_date": (end + timedelta(days=20)).isoformat(),
                    "credit_limit": limit,
                    "repayment_status": status,
                },
            )
            paid = 0.0 if late and m > 2 else round(balance * (1.0 if a % 3 == 0 else 0.3), 2)
            if paid > 0:
                event("payment", account, _at(end + timedelta(days=15)), {"amount": paid})
                balance -= paid
        observed = _month_end(WARMUP_START, months)
        event(
            "outcome",
            account,
            _at(observed),
            {"default_flag": int(late), "observed_date": observed.isoformat()},
        )
    lines = [serialize(e) for e in events]
    lines.append(lines[1])  # a duplicate
    stranger = new_event(
        "purchase",
        "W-UNKNOWN",
        _at(WARMUP_START),
        {"amount": 1.0, "merchant_category": MERCHANT_CATEGORIES[0]},
        WARMUP_PORTFOLIO,
        event_id="00000000-0000-4000-9fff-000000000000",
    )
    lines.append(serialize(stranger))
    lines.append(b"not json")
    return lines


def warm_up(
    spark: SparkSession, settings: Settings, accounts: int = WARMUP_ACCOUNTS
) -> dict[str, Any]:
    """Run both ETL jobs over the warm-up portfolio in a scratch folder; their counts and time."""
    from etl.jobs import curated_to_features as c2f
    from etl.jobs import raw_to_curated as r2c

    started = time.perf_counter()
    lines = warmup_lines(accounts)
    with tempfile.TemporaryDirectory(prefix="riskstream-warmup-") as scratch:
        base = Path(scratch)
        folder = base / "raw" / "events" / "dt=2025-06-01" / "hr=00"
        folder.mkdir(parents=True)
        body = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6, mtime=0)
        (folder / "warmup-000000000000-000000000000.jsonl.gz").write_bytes(body)
        curated = r2c.run(
            spark,
            settings,
            r2c.options(
                settings,
                JOB_NAME="warmup_raw_to_curated",
                source=str(base / "raw" / "events"),
                target=str(base / "curated"),
                quarantine=str(base / "quarantine"),
                run_date=RUN_DATE,
            ),
        )
        built = c2f.run(
            spark,
            settings,
            c2f.options(
                settings,
                JOB_NAME="warmup_curated_to_features",
                portfolio=WARMUP_PORTFOLIO,
                source=str(base / "curated"),
                target=str(base / "features"),
                run_date=RUN_DATE,
            ),
        )
    spark.catalog.clearCache()
    seconds = time.perf_counter() - started
    logger.info(
        "Spark session warmed up in %.1f s: both ETL jobs over %d built-in accounts (%d events)",
        seconds,
        accounts,
        len(lines),
    )
    return {
        "seconds": seconds,
        "events": len(lines),
        "curated": curated["rows_out_total"],
        "quarantined": curated["quarantined_total"],
        "duplicates": curated["duplicates_removed"],
        "features": built["rows_out"],
        "obs_dates": len(built["obs_dates"]),  # the panel the features job derives
    }
