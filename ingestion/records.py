"""Events -> Kinesis records -> PutRecords batches, within the service limits. Pure module.

Each event is validated and serialized once (``riskstream.events`` is the contract); anything that
can never be sent (invalid, oversize, a repeated event_id) becomes a :class:`Rejected` with a
reason instead of disappearing. Batches respect PutRecords' limits: 500 records, 5 MiB per request
and 1 MB per record, partition key included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from riskstream.events import MAX_RECORD_BYTES, EventValidationError, serialize, validate

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256


@dataclass(frozen=True, slots=True)
class Record:
    """One Kinesis record ready to send: the serialized event and its partition key."""

    data: bytes
    partition_key: str
    event_id: str

    @property
    def size(self) -> int:
        return record_size(self.data, self.partition_key)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that can never be sent, with a machine-friendly reason and a readable detail."""

    reason: str
    detail: str
    event_id: str | None = None
    account_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "event_id": self.event_id,
            "account_id": self.account_id,
        }


def record_size(data: bytes, partition_key: str) -> int:
    """What Kinesis counts against the 1 MB record limit: data plus the UTF-8 partition key."""
    return len(data) + len(partition_key.encode("utf-8"))


def to_record(event: Mapping[str, Any], now: datetime, check: bool = True) -> Record:
    """Validate (unless ``check`` is False) and serialize one event; raise on anything unsendable.

    Raises :class:`EventValidationError` with reason ``oversize`` when the record would exceed
    Kinesis' 1 MB limit, or the contract's reason when the event is invalid.
    """
    if check:
        validate(event, now=now)
    key = event.get("account_id")
    if not isinstance(key, str) or not key:
        raise EventValidationError("bad_account_id", f"account_id {key!r} is not a partition key")
    if len(key) > MAX_PARTITION_KEY_CHARS:
        raise EventValidationError(
            "bad_account_id", f"partition key of {len(key)} chars exceeds {MAX_PARTITION_KEY_CHARS}"
        )
    try:
        data = serialize(event)
    except (TypeError, ValueError) as exc:
        raise EventValidationError("not_serializable", str(exc)) from None
    size = record_size(data, key)
    if size > MAX_RECORD_BYTES:
        raise EventValidationError(
            "oversize", f"record is {size:,} bytes with its key; the limit is {MAX_RECORD_BYTES:,}"
        )
    event_id = event.get("event_id")
    return Record(data, key, event_id if isinstance(event_id, str) else "")


def prepare(
    events: Iterable[Mapping[str, Any]], now: datetime, check: bool = True
) -> Iterator[Record | Rejected]:
    """Turn events into records, yielding a :class:`Rejected` for each one that cannot be sent.

    A second event with an event_id already seen in this run is rejected as ``duplicate_event_id``
    (the first one is sent), so a replayed input cannot put the same event on the stream twice.
    """
    seen: set[str] = set()
    for event in events:
        if not isinstance(event, Mapping):
            yield Rejected("bad_event", f"expected an event object, got {type(event).__name__}")
            continue
        event_id = event.get("event_id")
        account_id = event.get("account_id")
        ids = (
            event_id if isinstance(event_id, str) else None,
            account_id if isinstance(account_id, str) else None,
        )
        try:
            record = to_record(event, now, check)
        except EventValidationError as exc:
            yield Rejected(exc.reason, exc.detail, *ids)
            continue
        if record.event_id in seen:
            yield Rejected(
                "duplicate_event_id", f"event_id {record.event_id} was already sent", *ids
            )
            continue
        seen.add(record.event_id)
        yield record


def batches(
    records: Iterable[Record],
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Record]]:
    """Group records, in order, into lists that fit one PutRecords request."""
    if not 1 <= max_records <= MAX_BATCH_RECORDS:
        raise ValueError(f"max_records={max_records} must be between 1 and {MAX_BATCH_RECORDS}")
    if max_bytes < MAX_RECORD_BYTES:
        raise ValueError(f"max_bytes={max_bytes} must be at least one record ({MAX_RECORD_BYTES})")
    batch: list[Record] = []
    size = 0
    for record in records:
        rsize = record.size
        if batch and (len(batch) >= max_records or size + rsize > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += rsize
    if batch:
        yield batch


def hash_key(partition_key: str) -> int:
    """Kinesis' placement of a partition key: the MD5 of its UTF-8 bytes as a 128-bit integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


@dataclass(frozen=True)
class ShardRange:
    shard_id: str
    start: int
    end: int


def shard_ranges(shards: Iterable[Mapping[str, Any]]) -> list[ShardRange]:
    """Open shards' hash key ranges from a ListShards answer, sorted by start."""
    out = [
        ShardRange(
            s["ShardId"],
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in shards
        if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
    ]
    return sorted(out, key=lambda r: r.start)


def shard_index(partition_key: str, ranges: Sequence[ShardRange]) -> int:
    """Index into ``ranges`` of the shard that owns ``partition_key`` (0 when unknown)."""
    value = hash_key(partition_key)
    for i, item in enumerate(ranges):
        if item.start <= value <= item.end:
            return i
    return 0
