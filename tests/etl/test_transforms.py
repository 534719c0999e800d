"""raw -> curated transforms on DataFrames of a few rows: exact rows, schemas and reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from etl import transforms
from tests.etl.helpers import eid, line, lines_frame, opened, payment, purchase, statement

NOW = datetime(2026, 1, 1, tzinfo=UTC)
pytestmark = pytest.mark.integration  # Spark: a JVM, with S3A pointed at the session's moto server


def _lines(spark: SparkSession, items: list[Any], dt: str = "2025-01-06") -> DataFrame:
    rows = [(line(e), dt, f"file-{i // 100}") for i, e in enumerate(items)]
    return lines_frame(spark, rows)


def _classify(spark: SparkSession, items: list[Any], known: list[str] | None = None) -> DataFrame:
    validated = transforms.validate_events(transforms.parse_lines(_lines(spark, items)), NOW)
    known_df = (
        spark.createDataFrame([(a,) for a in known], "account_id string")
        if known is not None
        else None
    )
    # cached: most tests look at the result several times
    return transforms.classify_events(validated, known_df).cache()


def _verdicts(frame: DataFrame) -> list[tuple[str | None, str, str | None]]:
    rows = frame.select("event_id", "status", "reason").collect()
    return sorted((r["event_id"], r["status"], r["reason"]) for r in rows)


def test_valid_events_become_exact_curated_rows(spark: SparkSession) -> None:
    events = [
        opened(1, "A1", "2025-01-05", income=50000.0, marital_status="single"),
        purchase(2, "A1", "2025-01-06", 12.5, "dining"),
        statement(3, "A1", "2025-01-31", 812.25, status=1, minimum_due=40.0),
    ]
    classified = _classify(spark, events)

    purchases = transforms.curated_table(classified, "purchase")
    assert purchases.schema == T.StructType(
        [*transforms.curated_schema("purchase").fields, T.StructField("dt", T.StringType())]
    )
    assert [tuple(r) for r in purchases.collect()] == [
        (eid(2), "A1", datetime(2025, 1, 6, 12), "test", 12.5, "dining", "2025-01-06")
    ]
    opened_rows = transforms.curated_table(classified, "account_opened").collect()
    assert [r.asDict() for r in opened_rows] == [
        {
            "event_id": eid(1),
            "account_id": "A1",
            "event_time": datetime(2025, 1, 5, 12),
            "source": "test",
            "credit_limit": 10000.0,
            "income": 50000.0,
            "age": 35,
            "sex": "2",
            "education": "1",
            "marital_status": "single",
            "attributes": None,
            "dt": "2025-01-06",
        }
    ]
    stmt = transforms.curated_table(classified, "statement").first()
    assert stmt is not None
    assert (stmt["statement_date"].isoformat(), stmt["balance"], stmt["repayment_status"]) == (
        "2025-01-31",
        812.25,
        1,
    )
    assert transforms.quarantine_table(classified).count() == 0


def _broken(n: int, mutate: Any, make: Any = None) -> dict[str, Any]:
    event = make(n) if make else purchase(n, "A1", "2025-01-06", 20.0)
    mutate(event)
    return event


def _bad_due_date(event: dict[str, Any]) -> None:
    event["payload"]["due_date"] = "2025-01-01"


def _wrong_type_for_statement(event: dict[str, Any]) -> None:
    event["event_type"] = "statement"


BROKEN: dict[str, tuple[Any, str, str]] = {
    # case: (line, expected reason, a part of the expected detail)
    "not json": ("{not json", "bad_json", "not a JSON object"),
    "an array": ("[1, 2]", "bad_json", "not a JSON object"),
    "text amount": (
        _broken(101, lambda e: e["payload"].update(amount="abc")),
        "bad_type",
        "got abc",
    ),
    "boolean amount": (
        _broken(102, lambda e: e["payload"].update(amount=True)),
        "bad_type",
        "got true",
    ),
    "absent amount": (
        _broken(103, lambda e: e["payload"].pop("amount")),
        "missing_field",
        "purchase needs payload.amount",
    ),
    "null amount": (
        _broken(104, lambda e: e["payload"].update(amount=None)),
        "missing_field",
        "purchase needs payload.amount",
    ),
    "negative amount": (
        _broken(105, lambda e: e["payload"].update(amount=-3)),
        "out_of_range",
        "payload.amount=-3 is below 0.01",
    ),
    "unknown category": (
        _broken(106, lambda e: e["payload"].update(merchant_category="toys")),
        "bad_value",
        "toys",
    ),
    "no account": (_broken(107, lambda e: e.pop("account_id")), "missing_field", "account_id"),
    "blank account": (
        _broken(108, lambda e: e.update(account_id="  ")),
        "bad_account_id",
        "'  '",
    ),
    "bad id": (_broken(109, lambda e: e.update(event_id="nope")), "bad_event_id", "nope"),
    "version 2": (
        _broken(110, lambda e: e.update(schema_version=2)),
        "unsupported_schema_version",
        "schema_version 2",
    ),
    "refund": (
        _broken(111, lambda e: e.update(event_type="refund")),
        "unknown_event_type",
        "refund",
    ),
    "no zone": (
        _broken(112, lambda e: e.update(event_time="2025-01-06 10:00:00")),
        "bad_time",
        "2025-01-06 10:00:00",
    ),
    "future": (
        _broken(113, lambda e: e.update(event_time="2031-01-01T00:00:00Z")),
        "time_out_of_range",
        "2031-01-01T00:00:00Z",
    ),
    "due before statement": (
        _broken(114, _bad_due_date, lambda n: statement(n, "A1", "2025-01-31", 10.0)),
        "impossible_value",
        "payload.due_date=2025-01-01 is before payload.statement_date=2025-01-31",
    ),
    "purchase payload as statement": (
        _broken(115, _wrong_type_for_statement),
        "missing_field",
        "statement needs payload.statement_date",
    ),
    "unknown account": (
        purchase(116, "B7", "2025-01-06", 5.0),
        "unknown_account",
        "account_id B7 has no account_opened event",
    ),
}


@pytest.fixture(scope="module")
def broken(spark: SparkSession) -> dict[str, Any]:
    """Every broken case in one batch (one Spark run), keyed by its raw line."""
    items = [opened(1, "A1", "2025-01-05"), *[case[0] for case in BROKEN.values()]]
    classified = _classify(spark, items)
    return {
        "quarantine": {
            r["value"]: r.asDict() for r in transforms.quarantine_table(classified).collect()
        },
        "ok": [r["event_id"] for r in classified.where("status = 'ok'").collect()],
    }


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_rows_are_quarantined_with_a_reason(broken: dict[str, Any], case: str) -> None:
    item, reason, detail = BROKEN[case]
    row = broken["quarantine"][line(item)]  # the raw line is kept as it came
    assert (row["reason"], detail in row["detail"]) == (reason, True), row["detail"]


def test_only_the_valid_row_of_the_broken_batch_survives(broken: dict[str, Any]) -> None:
    assert broken["ok"] == [eid(1)]
    assert len(broken["quarantine"]) == len(BROKEN)


def test_duplicates_keep_one_copy_and_are_counted(spark: SparkSession) -> None:
    first = purchase(2, "A1", "2025-01-06", 10.0)
    classified = _classify(spark, [opened(1, "A1", "2025-01-05"), first, first, first])
    assert _verdicts(classified) == [
        (eid(1), "ok", None),
        (eid(2), "duplicate", None),
        (eid(2), "duplicate", None),
        (eid(2), "ok", None),
    ]
    assert transforms.curated_table(classified, "purchase").count() == 1


def test_duplicate_of_a_bad_row_is_quarantined_not_deduplicated(spark: SparkSession) -> None:
    bad = _broken(9, lambda e: e["payload"].update(amount="x"))
    classified = _classify(spark, [opened(1, "A1", "2025-01-05"), bad, bad])
    counts = {
        (r["status"], r["reason"]): r["count"]
        for r in classified.groupBy("status", "reason").count().collect()
    }
    assert counts == {("ok", None): 1, ("quarantined", "bad_type"): 2}


def test_unknown_account_is_quarantined_unless_opened_before(spark: SparkSession) -> None:
    events = [purchase(2, "B7", "2025-01-06", 5.0), payment(3, "C1", "2025-01-06", 5.0)]
    classified = _classify(spark, events, known=["C1"])
    assert _verdicts(classified) == [
        (eid(2), "quarantined", "unknown_account"),
        (eid(3), "ok", None),
    ]


def test_out_of_order_lines_give_the_same_result(spark: SparkSession) -> None:
    events = [
        opened(1, "A1", "2025-01-05"),
        purchase(2, "A1", "2025-01-06", 10.0),
        payment(3, "A1", "2025-01-07", 4.0),
        purchase(2, "A1", "2025-01-06", 10.0),
    ]
    forward = _verdicts(_classify(spark, events))
    backward = _verdicts(_classify(spark, list(reversed(events))))
    assert forward == backward
    # The opening event arriving after the account's purchase still vouches for it.
    assert (eid(2), "ok", None) in backward


def test_nullable_payload_fields_may_be_null_or_absent(spark: SparkSession) -> None:
    event = statement(5, "A1", "2025-01-31", 100.0, status=None)
    event["payload"]["credit_limit"] = None
    classified = _classify(spark, [opened(1, "A1", "2025-01-05"), event])
    row = transforms.curated_table(classified, "statement").first()
    assert row is not None
    assert (row["repayment_status"], row["credit_limit"]) == (None, None)


def test_attributes_pass_through_as_a_string_map(spark: SparkSession) -> None:
    event = opened(1, "A1", "2025-01-05", attributes={"region": "north", "score": 3.5})
    row = transforms.curated_table(_classify(spark, [event]), "account_opened").first()
    assert row is not None
    assert row["attributes"] == {"region": "north", "score": "3.5"}


def test_every_line_ends_in_exactly_one_state(spark: SparkSession) -> None:
    events: list[Any] = [opened(1, "A1", "2025-01-05")]
    events += [purchase(i, "A1", "2025-01-06", float(i)) for i in range(2, 12)]
    events += [events[3], "", "{}", json.dumps({"x": 1})]
    classified = _classify(spark, events)
    counts = {r["status"]: r["count"] for r in classified.groupBy("status").count().collect()}
    assert counts == {"ok": 11, "duplicate": 1, "quarantined": 3}
    assert sum(counts.values()) == len(events)


def test_curated_table_rejects_an_unknown_type(spark: SparkSession) -> None:
    classified = _classify(spark, [opened(1, "A1", "2025-01-05")])
    with pytest.raises(ValueError, match="'refund'"):
        transforms.curated_table(classified, "refund")
