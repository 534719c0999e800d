"""Build raw event lines and gzip JSON-lines files the way the landing consumer writes them."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskstream.events import new_event, serialize


def eid(n: int) -> str:
    """A deterministic UUID-shaped event id."""
    return f"00000000-0000-4000-8000-{n:012d}"


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def opened(n: int, account: str, day: str, **payload: Any) -> dict[str, Any]:
    body = {"credit_limit": 10000.0, "age": 35, "sex": "2", "education": "1"}
    body.update(payload)
    return new_event("account_opened", account, at(day), body, "test", event_id=eid(n))


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
    return new_event("statement", account, at(month_end, 23), payload, "test", event_id=eid(n))


def payment(n: int, account: str, day: str, amount: float) -> dict[str, Any]:
    return new_event("payment", account, at(day), {"amount": amount}, "test", event_id=eid(n))


def purchase(
    n: int, account: str, day: str, amount: float, category: str = "grocery"
) -> dict[str, Any]:
    payload = {"amount": amount, "merchant_category": category}
    return new_event("purchase", account, at(day), payload, "test", event_id=eid(n))


def outcome(n: int, account: str, observed: str, flag: int) -> dict[str, Any]:
    payload = {"default_flag": flag, "observed_date": observed}
    return new_event("outcome", account, at(observed), payload, "test", event_id=eid(n))


def line(event: Mapping[str, Any] | str) -> str:
    return event if isinstance(event, str) else serialize(event).decode()


def dt_of(event: Mapping[str, Any]) -> str:
    return str(event["event_time"])[:10]


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
