"""At least 30 malformed records, each with the reason the consumer must give."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from riskstream.events import new_event

ARRIVED = datetime(2025, 6, 1, 12, tzinfo=UTC)


def good(account: str = "G1", n: int = 0) -> dict[str, Any]:
    return new_event(
        "purchase",
        account,
        datetime(2025, 5, 30, 9, n % 60, tzinfo=UTC),
        {"amount": 12.5, "merchant_category": "dining"},
        source="test",
    )


def _with(**changes: Any) -> bytes:
    event = good()
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key)
        else:
            event[key] = value
    return json.dumps(event).encode()


def _payload(event_type: str, payload: dict[str, Any]) -> bytes:
    event = good()
    event["event_type"] = event_type
    event["payload"] = payload
    return json.dumps(event).encode()


_DROP = object()
STATEMENT = {
    "statement_date": "2025-05-31",
    "balance": 10.0,
    "minimum_due": 1.0,
    "due_date": "2025-06-25",
}


def _amount(text: str) -> bytes:
    """The good purchase with its amount written as ``text`` (raw JSON)."""
    return json.dumps(good()).replace('"amount": 12.5', f'"amount": {text}').encode()


def malformed() -> list[tuple[str, bytes, str]]:
    """(name, bytes, expected reason)."""
    nan_amount = json.dumps(good()).replace('"amount": 12.5', '"amount": NaN')
    return [
        ("not json", b"hello world", "bad_json"),
        ("truncated json", b'{"event_id": "x"', "bad_json"),
        ("empty record", b"", "bad_json"),
        ("bad utf-8", b'{"a": "\xff\xfe"}', "bad_utf8"),
        ("json array", b"[1, 2, 3]", "bad_json"),
        ("json null", b"null", "bad_json"),
        ("json string", b'"purchase"', "bad_json"),
        ("NaN literal", nan_amount.encode(), "bad_json"),
        ("byte order mark", b"\xef\xbb\xbf" + json.dumps(good()).encode(), "bad_json"),
        # Texts the fast parser refuses but the standard one reads: the rules still apply.
        ("amount overflows a double", _amount("1e400"), "bad_type"),
        ("amount wider than 64 bits", _amount("1" * 30), "out_of_range"),
        ("missing event_id", _with(event_id=_DROP), "missing_field"),
        ("missing payload", _with(payload=_DROP), "missing_field"),
        ("missing event_time", _with(event_time=_DROP), "missing_field"),
        ("extra envelope field", _with(note="hi"), "unexpected_field"),
        ("event_id not a uuid", _with(event_id="12345"), "bad_event_id"),
        ("event_id a number", _with(event_id=12345), "bad_type"),
        ("empty account_id", _with(account_id=""), "bad_account_id"),
        ("account_id too long", _with(account_id="A" * 65), "bad_account_id"),
        ("account_id a number", _with(account_id=7), "bad_account_id"),
        ("schema_version 2", _with(schema_version=2), "unsupported_schema_version"),
        ("schema_version text", _with(schema_version="1"), "unsupported_schema_version"),
        ("empty source", _with(source=""), "bad_type"),
        ("unknown event type", _with(event_type="refund"), "unknown_event_type"),
        ("time not iso", _with(event_time="yesterday"), "bad_time"),
        ("time without zone", _with(event_time="2025-05-30T09:00:00"), "bad_time"),
        ("time a number", _with(event_time=1717236000), "bad_time"),
        ("future time", _with(event_time="2099-06-05T00:00:00Z"), "time_out_of_range"),
        ("ancient time", _with(event_time="1969-12-31T23:59:59Z"), "time_out_of_range"),
        ("payload a list", _with(payload=[1]), "bad_payload"),
        (
            "amount as text",
            _payload("purchase", {"amount": "12", "merchant_category": "fuel"}),
            "bad_type",
        ),
        (
            "amount negative",
            _payload("purchase", {"amount": -1, "merchant_category": "fuel"}),
            "out_of_range",
        ),
        (
            "amount a bool",
            _payload("purchase", {"amount": True, "merchant_category": "fuel"}),
            "bad_type",
        ),
        (
            "unknown category",
            _payload("purchase", {"amount": 1, "merchant_category": "yachts"}),
            "bad_value",
        ),
        (
            "extra payload field",
            _payload("purchase", {"amount": 1, "merchant_category": "fuel", "tip": 1}),
            "unexpected_field",
        ),
        (
            "statement missing due",
            _payload("statement", {k: v for k, v in STATEMENT.items() if k != "due_date"}),
            "missing_field",
        ),
        (
            "statement bad date",
            _payload("statement", {**STATEMENT, "statement_date": "2025-13-01"}),
            "bad_type",
        ),
        (
            "status out of range",
            _payload("statement", {**STATEMENT, "repayment_status": 12}),
            "out_of_range",
        ),
        (
            "flag 2",
            _payload("outcome", {"default_flag": 2, "observed_date": "2025-05-31"}),
            "bad_type",
        ),
        (
            "flag 1.0",
            _payload("outcome", {"default_flag": 1.0, "observed_date": "2025-05-31"}),
            "bad_type",
        ),
        ("limit 0", _payload("account_opened", {"credit_limit": 0}), "out_of_range"),
        (
            "nested attributes",
            _payload("account_opened", {"credit_limit": 5, "attributes": {"a": {"b": 1}}}),
            "bad_type",
        ),
        ("age 150", _payload("account_opened", {"credit_limit": 5, "age": 150}), "out_of_range"),
        ("pretty-printed", json.dumps(good("G9"), indent=2).encode(), "not_single_line"),
    ]
