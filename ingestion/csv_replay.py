"""A user's own CSV or Parquet file, plus a small mapping, as events. Pure functions; ``load_frame``
and ``load_mapping`` read the files they are given.

The mapping (JSON) names columns::

    {"entity_id": "customer", "event_time": "as_of", "label": "defaulted",
     "label_time": "seen",
     "credit_limit": "limit", "income": "income", "age": "age",
     "attributes": ["region", "product"]}

``entity_id`` is required, and either an ``event_time`` column or an ``observation_date``.
Each row becomes an ``account_opened`` (known fields plus ``attributes`` passed through) and, when
a label column is mapped and the row has a label, an ``outcome`` observed at the ``label_time``
column's date (optional; else the ``observation_date``, else the row's ``event_time``).
Times without a timezone are read as UTC; a date alone means midnight UTC.

A flat applicant table (one row per applicant, a 0/1 label, no date, limit or statement
columns)::

    {"entity_id": "applicant", "label": "bad", "observation_date": "2024-01-01",
     "performance_months": 12, "income": "income",
     "attributes": ["employment_years", "housing", "purpose"], "protected": ["religion"]}

Every applicant is opened the day before ``observation_date`` and its label is observed at the
observation date, the first day of the performance window that starts there, so any window
(``performance_months``, kept in the mapping for the record) holds it. ``credit_limit`` is
optional. Columns under ``protected`` pass through as attributes named ``protected_<column>``:
they reach the feature table (for monitoring and the fairness report) and are never model inputs
(training.lawful). An attribute column that is empty in every row is dropped with a warning.

A row that cannot become events (no id, an unreadable time, a label that is not 0/1) is not dropped:
it becomes a :class:`RowError` with the row number and reason, which the producer reports. A
field out of its range or type where the event contract allows a null (an age of 150) is sent
as null with the rest of the row, announced by a :class:`FieldNulled` naming the field.

A column without a header is named as pandas names it, by its 0-based position: a first column
of ids written without a header is ``"entity_id": "Unnamed: 0"``. Mapping errors are
:class:`~riskstream.errors.ConfigurationError` s: the pipeline fails them at once, unretried.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion.ids import event_id
from riskstream import names
from riskstream.errors import ConfigurationError
from riskstream.events import envelope, format_time, null_bad_fields
from riskstream.settings import PORTFOLIO_RE

logger = logging.getLogger(__name__)

SOURCE = names.SOURCE_CSV
KNOWN_FIELDS = ("credit_limit", "income", "age", "sex", "education", "marital_status")
MAPPING_KEYS = (
    "entity_id",
    "event_time",
    "observation_date",
    "performance_months",
    "label",
    "label_time",
    "attributes",
    "protected",
    "source",
    "portfolio",
    "lookback_months",
    *KNOWN_FIELDS,
)
PROTECTED_ATTRIBUTE_PREFIX = "protected_"
UNNAMED_COLUMN = "Unnamed: {position}"
"""How a column without a header is named (pandas' own naming, 0-based position): a file whose
first column has no header (an index written by ``DataFrame.to_csv``) maps it as
``"entity_id": "Unnamed: 0"``."""


class MappingError(ConfigurationError):
    """The mapping does not fit the file; the message names the key, the value and the fix."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which column plays which role. Build with :func:`parse_mapping`."""

    entity_id: str
    event_time: str | None = None
    credit_limit: str | None = None
    label: str | None = None
    label_time: str | None = None
    attributes: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)  # known payload field -> column
    source: str = SOURCE
    observation_date: datetime | None = None  # midnight UTC
    performance_months: int | None = None
    protected: tuple[str, ...] = ()
    portfolio: str | None = None  # the mapping's own name for its portfolio, if it gives one
    lookback_months: int | None = None

    def windows(self) -> dict[str, Any]:
        """What the features job needs from the mapping: its observation date and windows
        (empty values when the mapping leaves them to the data)."""
        return {
            "obs_dates": self.observation_date.date().isoformat() if self.observation_date else "",
            "performance_months": self.performance_months or 0,
            "lookback_months": self.lookback_months or 0,
        }

    def columns(self) -> list[str]:
        cols = [self.entity_id, self.event_time, self.credit_limit, *self.fields.values()]
        cols += [self.label, self.label_time, *self.attributes, *self.protected]
        return list(dict.fromkeys(c for c in cols if c))


@dataclass(frozen=True)
class RowError:
    """A row that could not become events: its 1-based data row number and why."""

    row: int
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class FieldNulled:
    """A field of a row that broke the event contract where it allows a null (an age of 150):
    the field was sent as null, the rest of the row as it was. ``reason`` names the field
    (``age_out_of_range``); ``detail`` has the value."""

    row: int
    field: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason, "detail": self.detail}


def parse_mapping(raw: Mapping[str, Any]) -> ColumnMapping:
    """Check a mapping dict; raise :class:`MappingError` naming any bad key or value."""
    unknown = sorted(set(raw) - set(MAPPING_KEYS))
    if unknown:
        raise MappingError(f"unknown mapping keys {unknown}; expected some of {list(MAPPING_KEYS)}")
    for key in ("entity_id", "label", "label_time"):
        if raw.get(key) == "":
            raise MappingError(
                f"mapping {key!r} is an empty string; give the column's name. A column without "
                f"a header is named by its position: {UNNAMED_COLUMN.format(position=0)!r} for "
                f'the first column (e.g. {{"{key}": "{UNNAMED_COLUMN.format(position=0)}"}}), '
                f"{UNNAMED_COLUMN.format(position=1)!r} for the second, and so on"
            )
    if not isinstance(raw.get("entity_id"), str):
        raise MappingError(
            f"mapping needs 'entity_id' as a column name, got {raw.get('entity_id')!r}: add "
            '"entity_id": "<the id column>" to the mapping'
        )
    for key in ("event_time", "credit_limit"):
        if raw.get(key) is not None and (not isinstance(raw[key], str) or not raw[key]):
            raise MappingError(f"mapping {key!r} must be a column name, got {raw[key]!r}")
    observation = _observation_date(raw.get("observation_date"))
    if not raw.get("event_time") and observation is None:
        raise MappingError(
            "mapping needs 'event_time' (a date column) or 'observation_date' (YYYY-MM-DD, the "
            "date the applicants are scored as of): add one of them"
        )
    months = raw.get("performance_months")
    if months is not None and (not isinstance(months, int) or not 1 <= months <= 24):
        raise MappingError(
            f"mapping 'performance_months' must be a whole number of months from 1 to 24, "
            f"got {months!r}"
        )
    lists = {}
    for key in ("attributes", "protected"):
        values = raw.get(key, [])
        if not isinstance(values, list) or not all(isinstance(a, str) for a in values):
            raise MappingError(f"mapping {key!r} must be a list of column names, got {values!r}")
        lists[key] = values
    attributes = [a for a in lists["attributes"] if a not in lists["protected"]]
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
    portfolio = raw.get("portfolio")
    if portfolio is not None and not (isinstance(portfolio, str) and PORTFOLIO_RE.match(portfolio)):
        raise MappingError(
            f"mapping 'portfolio' {portfolio!r} must be 2-40 lowercase letters, digits or "
            'hyphens, e.g. "home-credit"'
        )
    lookback = raw.get("lookback_months")
    if lookback is not None and (
        isinstance(lookback, bool) or not isinstance(lookback, int) or not 1 <= lookback <= 24
    ):
        raise MappingError(f"mapping 'lookback_months' must be 1-24 months, got {lookback!r}")
    return ColumnMapping(
        entity_id=raw["entity_id"],
        event_time=raw.get("event_time") or None,
        credit_limit=raw.get("credit_limit") or None,
        label=label,
        label_time=label_time,
        attributes=tuple(attributes),
        fields=fields,
        source=source,
        observation_date=observation,
        performance_months=months,
        protected=tuple(lists["protected"]),
        portfolio=portfolio,
        lookback_months=lookback,
    )


def portfolio_name(mapping: ColumnMapping, path: str | Path) -> str:
    """The portfolio a table's events belong to: the mapping's ``portfolio``, else the file's
    name made a portfolio name (``Give Me Credit.csv`` -> ``give-me-credit``), so that two
    tables never share a portfolio by accident."""
    if mapping.portfolio:
        return mapping.portfolio
    slug = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")[:40].strip("-")
    if not PORTFOLIO_RE.match(slug):
        raise MappingError(
            f"cannot name a portfolio after the file {Path(path).name!r}; add "
            '"portfolio": "<name>" (2-40 lowercase letters, digits or hyphens) to the mapping'
        )
    return slug


def _observation_date(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise MappingError(
            f"mapping 'observation_date' must be a date YYYY-MM-DD, got {value!r}"
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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
    """Every mapped column is in the file; else a :class:`MappingError` naming each missing
    column with the closest column of the file, and the columns it has."""
    have = [str(c) for c in frame.columns]
    missing = [c for c in mapping.columns() if c not in frame.columns]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, have, n=1, cutoff=0.6)
            if close:
                hints.append(f"for {column!r}, did you mean {close[0]!r}?")
        unnamed = [c for c in have if c.startswith(UNNAMED_COLUMN.format(position=""))]
        if unnamed:
            hints.append(f"columns without a header are named {unnamed}")
        raise MappingError(
            f"mapped columns {missing} are not in the file; it has {have}: fix the mapping "
            "(or drop those keys)" + ("; " + "; ".join(hints) if hints else "")
        )


def without_empty_attributes(frame: pd.DataFrame, mapping: ColumnMapping) -> ColumnMapping:
    """The mapping minus attribute columns that are empty in every row, with a note each."""
    empty = [c for c in mapping.attributes if c in frame.columns and frame[c].isna().all()]
    for column in empty:
        logger.warning("attribute column %r is empty in every row: dropped", column)
    if not empty:
        return mapping
    kept = tuple(c for c in mapping.attributes if c not in empty)
    return replace(mapping, attributes=kept)


def frame_events(
    frame: pd.DataFrame, mapping: ColumnMapping
) -> Iterator[dict[str, Any] | RowError | FieldNulled]:
    """Each row as account_opened (+ outcome when labelled), or a :class:`RowError`; a field
    out of its range (or of the wrong type) where the contract allows a null is sent as null,
    preceded by a :class:`FieldNulled` naming it."""
    check_columns(frame, mapping)
    mapping = without_empty_attributes(frame, mapping)
    records = frame[mapping.columns()].to_dict("records")
    for number, row in enumerate(records, start=1):
        try:
            yield from _row_events(number, row, mapping)
        except _RowProblem as problem:
            yield RowError(number, problem.reason, problem.detail)


class _RowProblem(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _row_events(
    number: int, row: dict[str, Any], mapping: ColumnMapping
) -> Iterator[dict[str, Any] | FieldNulled]:
    raw_id = row[mapping.entity_id]
    if _missing(raw_id) or not str(raw_id).strip():
        raise _RowProblem("missing_entity_id", f"column {mapping.entity_id!r} is empty")
    account = _text(raw_id)
    if mapping.event_time:
        moment = _time(row[mapping.event_time], mapping.event_time)
    else:  # opened the day before the observation date, so it belongs to its population
        assert mapping.observation_date is not None  # parse_mapping guarantees one of the two
        moment = mapping.observation_date - timedelta(days=1)
    when = format_time(moment)
    payload: dict[str, Any] = {}
    if mapping.credit_limit:
        payload["credit_limit"] = _number(row[mapping.credit_limit])
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
    if mapping.attributes or mapping.protected:
        payload["attributes"] = {
            **{c: _scalar(row[c]) for c in mapping.attributes},
            **{PROTECTED_ATTRIBUTE_PREFIX + c: _scalar(row[c]) for c in mapping.protected},
        }
    # A field the contract may null is nulled here when it breaks its range or type (the row is
    # kept, the field named); everything else is validated by the producer, which reports what
    # fails with a reason.
    nulled = null_bad_fields("account_opened", payload)
    label_value = _label(row[mapping.label], mapping.label) if mapping.label else None
    for name, problem in nulled:
        column = mapping.credit_limit if name == "credit_limit" else mapping.fields.get(name)
        yield FieldNulled(
            number, name, f"{name}_{problem.reason}", f"column {column!r}: {problem.detail}"
        )
    yield _event(mapping.source, "account_opened", account, when, payload)
    if label_value is not None:
        if mapping.label_time:
            label_moment = _time(row[mapping.label_time], mapping.label_time)
        else:
            label_moment = mapping.observation_date or moment
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
    return envelope(event_id(source, account, kind, when), kind, account, when, source, payload)


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
