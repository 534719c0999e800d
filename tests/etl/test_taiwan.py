"""The Taiwan replay's events give back the original table: every client's six bills, six
payments, six repayment statuses, profile and label, at the derived observation date 2005-10-01.

The events are built here the way the replay emits them (docs/etl.md, "Taiwan replay"):
statements at the month ends April..September 2005 (BILL_AMT6..BILL_AMT1, PAY_6..PAY_0),
payments within the same months (PAY_AMT6..PAY_AMT1), the outcome observed 2005-10-31.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from etl import chain, transforms
from riskstream.events import new_event, serialize
from tests.etl.helpers import lines_frame

pytestmark = pytest.mark.integration  # Spark: a JVM, with S3A pointed at the session's moto server
SAMPLE = Path(__file__).parent / "data" / "taiwan_sample.csv"
# Column suffix for each month, most recent first: m1 = September ... m6 = April.
MONTHS = [
    ("2005-09-30", "0", "1"),
    ("2005-08-31", "2", "2"),
    ("2005-07-31", "3", "3"),
    ("2005-06-30", "4", "4"),
    ("2005-05-31", "5", "5"),
    ("2005-04-30", "6", "6"),
]


def _table() -> list[dict[str, str]]:
    with SAMPLE.open() as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def _events(row: dict[str, str]) -> list[dict[str, Any]]:
    account = f"TW{int(row['ID']):05d}"
    out = [
        new_event(
            "account_opened",
            account,
            _at("2005-03-31"),
            {
                "credit_limit": float(row["LIMIT_BAL"]),
                "age": int(row["AGE"]),
                "sex": row["SEX"],
                "education": row["EDUCATION"],
                "marital_status": row["MARRIAGE"],
            },
            "taiwan",
        )
    ]
    for month_end, pay_suffix, amt_suffix in MONTHS:
        bill = float(row[f"BILL_AMT{amt_suffix}"])
        payload = {
            "statement_date": month_end,
            "balance": bill,
            "minimum_due": 0.0,
            "due_date": month_end,
            "repayment_status": int(row[f"PAY_{pay_suffix}"]),
        }
        out.append(new_event("statement", account, _at(month_end), payload, "taiwan"))
        paid = {"amount": float(row[f"PAY_AMT{amt_suffix}"])}
        out.append(new_event("payment", account, _at(month_end[:8] + "15"), paid, "taiwan"))
    flag = int(row["default payment next month"])
    outcome = {"default_flag": flag, "observed_date": "2005-10-31"}
    out.append(new_event("outcome", account, _at("2005-10-31"), outcome, "taiwan"))
    return out


def test_features_reproduce_the_original_table(spark: SparkSession) -> None:
    table = _table()
    events = [e for row in table for e in _events(row)]
    rows = [(serialize(e).decode(), e["event_time"][:10], "taiwan") for e in events]
    lines = lines_frame(spark, rows)
    validated = transforms.validate_events(
        transforms.parse_lines(lines), datetime(2026, 1, 1, tzinfo=UTC)
    )
    classified = transforms.classify_events(validated).cache()
    assert classified.where("status != 'ok'").count() == 0
    curated = {t: transforms.curated_table(classified, t) for t in transforms.EVENT_TYPES}

    assert chain.observation_dates(curated) == [date(2005, 10, 1)]
    built = chain.features_of(curated, [date(2005, 10, 1)])
    got = {r["account_id"]: r.asDict() for r in built.collect()}
    assert len(got) == len(table)
    for row in table:
        f = got[f"TW{int(row['ID']):05d}"]
        for k, (_, pay_suffix, amt_suffix) in enumerate(MONTHS, start=1):
            assert f[f"bill_amt_m{k}"] == float(row[f"BILL_AMT{amt_suffix}"])
            assert f[f"pay_amt_m{k}"] == float(row[f"PAY_AMT{amt_suffix}"])
            assert f[f"repayment_status_m{k}"] == int(row[f"PAY_{pay_suffix}"])
        assert f["credit_limit"] == float(row["LIMIT_BAL"])
        assert (f["age"], f["sex"], f["education"], f["marital_status"]) == (
            int(row["AGE"]),
            row["SEX"],
            row["EDUCATION"],
            row["MARRIAGE"],
        )
        assert f["label"] == int(row["default payment next month"])
