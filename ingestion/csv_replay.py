"""A user's own CSV or Parquet file, plus a small mapping, as events. Pure functions; ``load_frame``
and ``load_mapping`` read the files they are given.

The mapping (JSON) names columns::

    {"entity_id": "customer", "event_time": "as_of", "label": "defaulted",
     "label_time": "seen",
     "credit_limit": "limit", "income": "income", "age": "age",
     "attributes": ["region", "product"]}

``entity_id`` and ``event_time`` are required; so is ``credit_limit`` (the contract's
account_opened needs it). Each row becomes an ``account_opened`` (known fields plus ``attributes``
passed through) and, when a label column is mapped and the row has a label, an ``outcome`` observed
at the ``label_time`` column's date (optional; the row's ``event_time`` when not mapped).
Times without a timezone are read as UTC; a date alone means midnight UTC.

A row that cannot become events (no id, an unreadable time, a label that is not 0/1) is not dropped:
it becomes a :class:`RowError` with the row number and reason, which the producer reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion.ids import event_id
from riskstream.events import SCHEMA_VERSION, format_time

SOURCE = "csv"
KNOWN_FIELDS = ("credit_limit", "income", "age", "sex", "education", "marital_status")
MAPPING_KEYS = (
    "entity_id",
    "event_time",
    "label",
    "label_time",
    "attributes",
    "source",
    *KNOWN_FIELDS,
)


class MappingError(ValueError):
    """The mapping does not fit the file; the message names the key and the value."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which column plays which role. Build with :func:`parse_mapping`."""

    entity_id: str
    event_time: str
    credit_limit: str
    label: str | None = None
    label_time: str | None = None
    attributes: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)  # known payload field -> column
    source: str = SOURCE

    def columns(self) -> list[str]:
        cols = [self.entity_id, self.event_time, self.credit_limit, *self.fields.values()]
        if self.label:
            cols.append(self.label)
        if self.label_time:
            cols.append(self.label_time)
        return [*cols, *self.attributes]


@dataclass(frozen=True)
class RowError:
    """A row that could not become events: its 1-based data row number and why."""

    row: int
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "detail": self.detail}


def parse_mapping(raw: Mapping[str, Any]) -> ColumnMapping:
    """Check a mapping dict; raise :class:`MappingError` naming any bad key or value."""
    unknown = sorted(set(raw) - set(MAPPING_KEYS))
    if unknown:
        raise MappingError(f"unknown mapping keys {unknown}; expected some of {list(MAPPING_KEYS)}")
    for key in ("entity_id", "event_time", "credit_limit"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise MappingError(f"mapping needs {key!r} as a column name, got {raw.get(key)!r}")
    attributes = raw.get("attributes", [])
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        raise MappingError(
            f"mapping 'attributes' must be a list of column names, got {attributes!r}"
        )
    label = raw.get("label")
    if label is not None and not isinstance(label, str):
        raise MappingError(f"mapping 'label' must be a column name, got {label!r}")
    label_time = raw.get("label_time")
    if label_time is not None and (not isinstance(label_time, str) or not label):
        raise MappingError(
            f"mapping 'label_time' must be a column name and needs 'label', got {label_time!r}"
        )
    fields = {k: raw[k] for k in KNOWN_FIELDS if k != "credit_limit" and raw.get(k)}
    source = raw.get("source", SOURCE)
    if not isinstance(source, str) or not source:
        raise MappingError(f"mapping 'source' must be a non-empty string, got {source!r}")
    return ColumnMapping(
        entity_id=raw["entity_id"],
        event_time=raw["event_time"],
        credit_limit=raw["credit_limit"],
        label=label,
        label_time=label_time,
        attributes=tuple(attributes),
        fields=fields,
        source=source,
    )


def load_mapping(path: str | Path) -> ColumnMapping:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise MappingError(f"mapping file {path} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"mapping file {path} must hold a JSON object")
    return parse_mapping(raw)


def load_frame(path: str | Path) -> pd.DataFrame:
    """Read a .csv or .parquet file as it is (no type guessing beyond pandas' own)."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"input file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise MappingError(f"input file {path} must end in .csv or .parquet")


def check_columns(frame: pd.DataFrame, mapping: ColumnMapping) -> None:
    missing = [c for c in mapping.columns() if c not in frame.columns]
    if missing:
        raise MappingError(
            f"mapped columns {missing} are not in the file; it has {list(frame.columns)}"
        )


def frame_events(
    frame: pd.DataFrame, mapping: ColumnMapping
) -> Iterator[dict[str, Any] | RowError]:
    """Each row as account_opened (+ outcome when labelled), or a :class:`RowError`."""
    check_columns(frame, mapping)
    records = frame[mapping.columns()].to_dict("records")
    for number, row in enumerate(records, start=1):
        try:
            yield from _row_events(row, mapping)
        except _RowProblem as problem:
            yield RowError(number, problem.reason, problem.detail)


class _RowProblem(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _row_events(row: dict[str, Any], mapping: ColumnMapping) -> Iterator[dict[str, Any]]:
    raw_id = row[mapping.entity_id]
    if _missing(raw_id) or not str(raw_id).strip():
        raise _RowProblem("missing_entity_id", f"column {mapping.entity_id!r} is empty")
    account = _text(raw_id)
    moment = _time(row[mapping.event_time], mapping.event_time)
    when = format_time(moment)
    payload: dict[str, Any] = {"credit_limit": _number(row[mapping.credit_limit])}
    for name, column in mapping.fields.items():
        value = row[column]
        if _missing(value):
            payload[name] = None
        elif name == "income":
            payload[name] = _number(value)
        elif name == "age":
            age = _number(value)
            payload[name] = int(age) if isinstance(age, float) and age.is_integer() else age
        else:
            payload[name] = _text(value)
    if mapping.attributes:
        payload["attributes"] = {c: _scalar(row[c]) for c in mapping.attributes}
    # Validation (ranges, types) happens in the producer, which reports what fails with a reason.
    label_value = _label(row[mapping.label], mapping.label) if mapping.label else None
    yield _event(mapping.source, "account_opened", account, when, payload)
    if label_value is not None:
        label_moment = (
            _time(row[mapping.label_time], mapping.label_time) if mapping.label_time else moment
        )
        observed = label_moment.date().isoformat()
        yield _event(
            mapping.source,
            "outcome",
            account,
            format_time(label_moment),
            {"default_flag": label_value, "observed_date": observed},
        )


def _event(
    source: str, kind: str, account: str, when: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": event_id(source, account, kind, when),
        "event_type": kind,
        "account_id": account,
        "event_time": when,
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "payload": payload,
    }


def _label(value: Any, column: str) -> int | None:
    if _missing(value):
        return None
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true"):
        return 1
    if text in ("0", "0.0", "false"):
        return 0
    raise _RowProblem("bad_label", f"column {column!r}={value!r} is not 0 or 1 (or empty)")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: Any) -> Any:
    """Numbers pass as numbers; numeric text is converted; anything else is left for validation."""
    if _missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value.item() if hasattr(value, "item") else value
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return value


def _scalar(value: Any) -> Any:
    if _missing(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _time(value: Any, column: str) -> datetime:
    if _missing(value):
        raise _RowProblem("missing_time", f"column {column!r} is empty")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise _RowProblem("bad_time", f"column {column!r}={value!r} is not a date/time") from None
    if stamp is pd.NaT:
        raise _RowProblem("bad_time", f"column {column!r}={value!r} is not a date/time")
    moment = stamp.to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
