"""The versioned event contract shared by producers, the consumer and the ETL jobs.

Every event is one JSON object:

    {"event_id": "<uuid>", "event_type": "purchase", "account_id": "A000001",
     "event_time": "2025-03-14T09:26:53Z", "schema_version": 1, "source": "synthetic",
     "payload": {...}}

Pure module: validation takes ``now`` as an argument and never reads a clock or the network.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 1_000_000  # Kinesis: 1 MB per record (data + partition key)
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "fuel",
    "dining",
    "travel",
    "retail",
    "online",
    "utilities",
    "health",
    "entertainment",
    "cash_advance",
    "other",
)

ENVELOPE_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "account_id",
    "event_time",
    "schema_version",
    "source",
    "payload",
)


class EventValidationError(ValueError):
    """An event breaks the contract. ``reason`` is a short machine-friendly code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FieldSpec:
    """One payload field: its JSON type, whether it may be null/absent, and bounds."""

    kind: str  # "number" | "integer" | "string" | "date" | "flag" | "object"
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


# Payload schemas, one per event type. Version 1.
PAYLOAD_SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    "account_opened": {
        # Optional: an applicant table may have no limit (features that need it are then null).
        "credit_limit": FieldSpec(
            "number", required=False, nullable=True, minimum=0.01, maximum=1e9
        ),
        "income": FieldSpec("number", required=False, nullable=True, minimum=0, maximum=1e10),
        "age": FieldSpec("integer", required=False, nullable=True, minimum=18, maximum=120),
        "sex": FieldSpec("string", required=False, nullable=True),
        "education": FieldSpec("string", required=False, nullable=True),
        "marital_status": FieldSpec("string", required=False, nullable=True),
        # Extra attributes from a user's CSV pass through as a flat object of scalars.
        "attributes": FieldSpec("object", required=False, nullable=True),
    },
    "purchase": {
        "amount": FieldSpec("number", minimum=0.01, maximum=1e8),
        "merchant_category": FieldSpec("string", choices=MERCHANT_CATEGORIES),
    },
    "statement": {
        "statement_date": FieldSpec("date"),
        "balance": FieldSpec("number", minimum=-1e9, maximum=1e9),
        "minimum_due": FieldSpec("number", minimum=0, maximum=1e9),
        "due_date": FieldSpec("date"),
        "credit_limit": FieldSpec("number", required=False, nullable=True, minimum=0, maximum=1e9),
        # Taiwan convention: -2 no consumption, -1 paid in full, 0 revolving, 1..9 months late.
        "repayment_status": FieldSpec(
            "integer", required=False, nullable=True, minimum=-2, maximum=9
        ),
    },
    "payment": {
        "amount": FieldSpec("number", minimum=0, maximum=1e9),
        "statement_date": FieldSpec("date", required=False, nullable=True),
    },
    "outcome": {
        "default_flag": FieldSpec("flag"),
        "observed_date": FieldSpec("date"),
    },
}
EVENT_TYPES: tuple[str, ...] = tuple(PAYLOAD_SCHEMAS)


def new_event(
    event_type: str,
    account_id: str,
    event_time: datetime,
    payload: Mapping[str, Any],
    source: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Build one event dict in the contract's shape (not yet validated)."""
    return envelope(
        event_id or str(uuid.uuid4()),
        event_type,
        account_id,
        format_time(event_time),
        source,
        dict(payload),
    )


def envelope(
    event_id: str,
    event_type: str,
    account_id: str,
    event_time: str,
    source: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """One event dict in the contract's shape, its time already formatted (not yet validated).

    For sources that build many events with precomputed ids and times; ``payload`` is not copied.
    """
    return {
        "event_id": event_id,
        "event_type": event_type,
        "account_id": account_id,
        "event_time": event_time,
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "payload": payload,
    }


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with a trailing Z and at most millisecond precision."""
    if moment.tzinfo is None:
        raise ValueError(f"event_time {moment!r} has no timezone; use UTC")
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time that carries a timezone; return it in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no timezone")
    return moment.astimezone(UTC)


def serialize(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as it goes onto the stream."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode(data: bytes) -> dict[str, Any]:
    """Bytes -> dict, raising :class:`EventValidationError` for bad UTF-8 or JSON.

    orjson first (strict RFC 8259: it accepts no more than the standard parser below with
    constants refused, and is several times faster: the landing consumer decodes every record);
    anything it refuses goes through the standard parser, which accepts a few more texts
    (integers wider than 64 bits, lone surrogates) and gives the precise reason otherwise.
    """
    try:
        found = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(found, dict):
            return found
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventValidationError("bad_utf8", f"not UTF-8 at byte {exc.start}") from None
    try:
        obj = _DECODER.decode(text)
    except (json.JSONDecodeError, ValueError) as exc:
        raise EventValidationError("bad_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise EventValidationError("bad_json", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one, not one per record


def validate(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Check one event against the contract; return it unchanged or raise with a reason.

    ``now`` bounds the event time: nothing later than ``now + 1 day`` and nothing before 1970.
    """
    missing = [name for name in ENVELOPE_FIELDS if name not in event]
    if missing:
        raise EventValidationError("missing_field", f"missing {', '.join(missing)}")
    extra = sorted(set(event) - set(ENVELOPE_FIELDS))
    if extra:
        raise EventValidationError("unexpected_field", f"unexpected {', '.join(extra)}")

    version = event["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
        raise EventValidationError(
            "unsupported_schema_version",
            f"schema_version {version!r}; this build reads version {SCHEMA_VERSION}",
        )
    event_id = event["event_id"]
    if not isinstance(event_id, str):
        raise EventValidationError("bad_type", "event_id must be a UUID string")
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise EventValidationError("bad_event_id", f"event_id {event_id!r} is not a UUID") from None
    account_id = event["account_id"]
    if not isinstance(account_id, str) or not account_id.strip() or len(account_id) > 64:
        raise EventValidationError(
            "bad_account_id", f"account_id {account_id!r} must be a non-empty string of <= 64 chars"
        )
    if not isinstance(event["source"], str) or not event["source"]:
        raise EventValidationError("bad_type", "source must be a non-empty string")

    event_type = event["event_type"]
    if event_type not in PAYLOAD_SCHEMAS:
        raise EventValidationError(
            "unknown_event_type", f"event_type {event_type!r}; expected one of {EVENT_TYPES}"
        )

    raw_time = event["event_time"]
    if not isinstance(raw_time, str):
        raise EventValidationError(
            "bad_time", f"event_time {raw_time!r} must be an ISO 8601 string"
        )
    try:
        moment = parse_time(raw_time)
    except ValueError:
        raise EventValidationError(
            "bad_time", f"event_time {raw_time!r} is not ISO 8601 with a timezone"
        ) from None
    if moment < EARLIEST_EVENT_TIME:
        raise EventValidationError("time_out_of_range", f"event_time {raw_time} is before 1970")
    if moment > now + MAX_CLOCK_SKEW:
        raise EventValidationError("time_out_of_range", f"event_time {raw_time} is in the future")

    payload = event["payload"]
    if not isinstance(payload, dict):
        raise EventValidationError("bad_payload", "payload must be a JSON object")
    _validate_payload(event_type, payload)
    return dict(event)


def _validate_payload(event_type: str, payload: Mapping[str, Any]) -> None:
    schema = PAYLOAD_SCHEMAS[event_type]
    extra = sorted(set(payload) - set(schema))
    if extra:
        raise EventValidationError(
            "unexpected_field", f"{event_type} payload has unexpected {', '.join(extra)}"
        )
    for name, spec in schema.items():
        where = f"payload.{name}"
        if name not in payload:
            if spec.required:
                raise EventValidationError("missing_field", f"{event_type} needs {where}")
            continue
        value = payload[name]
        if value is None:
            if not spec.nullable:
                raise EventValidationError("null_field", f"{where} may not be null")
            continue
        _check_value(where, value, spec)


def null_bad_fields(
    event_type: str, payload: dict[str, Any]
) -> list[tuple[str, EventValidationError]]:
    """Set to null, in place, each field of ``payload`` that breaks its spec where the contract
    allows a null (an applicant's age of 150, an income of "n/a"); return (field, error) for each
    field nulled (the error's ``detail`` has the value), so a source keeps the rest of the record
    and reports what it lost. Fields that may not be null are left for :func:`validate`."""
    schema = PAYLOAD_SCHEMAS[event_type]
    nulled: list[tuple[str, EventValidationError]] = []
    for name, spec in schema.items():
        value = payload.get(name)
        if value is None or not spec.nullable:
            continue
        try:
            _check_value(f"payload.{name}", value, spec)
        except EventValidationError as exc:
            payload[name] = None
            nulled.append((name, exc))
    return nulled


def _check_value(where: str, value: Any, spec: FieldSpec) -> None:
    kind = spec.kind
    if kind in ("number", "integer"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "integer":
            ok = ok and (isinstance(value, int) or float(value).is_integer())
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise EventValidationError("bad_type", f"{where} must be a {kind}, got {value!r}")
        if spec.minimum is not None and value < spec.minimum:
            raise EventValidationError("out_of_range", f"{where}={value} is below {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            raise EventValidationError("out_of_range", f"{where}={value} is above {spec.maximum}")
    elif kind == "flag":
        if value not in (0, 1) or isinstance(value, float):
            raise EventValidationError("bad_type", f"{where} must be 0 or 1, got {value!r}")
    elif kind == "string":
        if not isinstance(value, str):
            raise EventValidationError("bad_type", f"{where} must be a string, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise EventValidationError(
                "bad_value", f"{where}={value!r} is not one of {', '.join(spec.choices)}"
            )
    elif kind == "date":
        if not isinstance(value, str):
            raise EventValidationError("bad_type", f"{where} must be a YYYY-MM-DD string")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise EventValidationError("bad_type", f"{where}={value!r} is not YYYY-MM-DD") from None
    elif kind == "object" and (
        not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values())
    ):
        raise EventValidationError("bad_type", f"{where} must be a flat object of scalars")
