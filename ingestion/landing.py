"""What the consumer does to records between reading and writing. Pure module.

Each Kinesis record is checked against the contract (``riskstream.events.validate`` with the
record's arrival time as ``now``, so a replay judges it exactly as the first pass did) and sorted
into good lines or quarantine entries, both under the UTC hour the record arrived in Kinesis
(``dt=YYYY-MM-DD/hr=HH``, the Kinesis Data Firehose convention): the number of objects grows with
wall time and flushes, not with the span of event time a replay covers. Object keys come from the
shard and the sequence range of the flush, and the hour from each record's
``ApproximateArrivalTimestamp``, so rewriting a flush after a crash rewrites the same objects.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from riskstream import names
from riskstream.events import EventValidationError, decode, validate


@dataclass(frozen=True)
class Verdict:
    """One record's outcome: its arrival partition and either the line or a quarantine entry."""

    partition: str  # dt=YYYY-MM-DD/hr=HH of the record's arrival
    line: bytes | None = None
    quarantine: dict[str, Any] | None = None
    event_id: str | None = None


def judge(
    data: bytes,
    shard_id: str,
    sequence_number: str,
    arrived: datetime,
    seen: set[str] | None = None,
) -> Verdict:
    """Validate one record. Good: its exact bytes. Bad (any contract violation, a line break inside
    the record, or an event_id already in ``seen``): a quarantine entry with reason, detail and the
    original bytes in base64. Either way under the UTC hour it arrived.
    """
    arrived = arrived.astimezone(UTC)
    partition = arrival_partition(arrived)
    try:
        if b"\n" in data or b"\r" in data:
            raise EventValidationError(
                "not_single_line", "record contains a line break; send compact one-line JSON"
            )
        event = validate(decode(data), now=arrived)
        event_id = event["event_id"]
        if seen is not None:
            if event_id in seen:
                raise EventValidationError(
                    "duplicate_event_id", f"event_id {event_id} already landed by this consumer"
                )
            seen.add(event_id)
    except EventValidationError as exc:
        entry = {
            "reason": exc.reason,
            "detail": exc.detail,
            "data_base64": base64.b64encode(data).decode("ascii"),
            "shard_id": shard_id,
            "sequence_number": sequence_number,
            "arrived_at": arrived.isoformat().replace("+00:00", "Z"),
        }
        return Verdict(partition, quarantine=entry)
    return Verdict(partition, line=data, event_id=event_id)


def arrival_partition(arrived: datetime) -> str:
    """``dt=YYYY-MM-DD/hr=HH`` of a UTC arrival time (Hive style, as Firehose lays out S3)."""
    return _hour_partition(int(arrived.timestamp()) // 3600)


@functools.lru_cache(maxsize=256)
def _hour_partition(hour: int) -> str:
    """The partition of the ``hour``-th hour since the epoch (records of a page share a few)."""
    start = datetime.fromtimestamp(hour * 3600, UTC)
    return f"dt={start.date().isoformat()}/hr={start.hour:02d}"


@dataclass
class FlushBuffer:
    """Records of one shard waiting to be written, grouped by arrival partition."""

    good: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    bad: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    first_seq: str | None = None
    last_seq: str | None = None
    records: int = 0
    bytes: int = 0
    started: float | None = None  # monotonic time of the first record

    def add(self, verdict: Verdict, sequence_number: str, size: int, now: float) -> None:
        if self.first_seq is None:
            self.first_seq = sequence_number
            self.started = now
        self.last_seq = sequence_number
        self.records += 1
        self.bytes += size
        if verdict.line is not None:
            self.good[verdict.partition].append(verdict.line)
        else:
            assert verdict.quarantine is not None
            self.bad[verdict.partition].append(verdict.quarantine)

    def __len__(self) -> int:
        return self.records

    @property
    def landed(self) -> int:
        return sum(len(v) for v in self.good.values())

    @property
    def quarantined(self) -> int:
        return sum(len(v) for v in self.bad.values())


def object_name(shard_id: str, first_seq: str, last_seq: str) -> str:
    """Deterministic object name for one flush: shard and sequence range."""
    return f"{shard_id}-{first_seq}-{last_seq}.jsonl.gz"


def raw_key(partition: str, shard_id: str, first_seq: str, last_seq: str) -> str:
    """``events/dt=YYYY-MM-DD/hr=HH/<shard>-<first>-<last>.jsonl.gz``."""
    return names.raw_event_key(partition, object_name(shard_id, first_seq, last_seq))


def quarantine_key(partition: str, shard_id: str, first_seq: str, last_seq: str) -> str:
    return names.ingest_quarantine_key(partition, object_name(shard_id, first_seq, last_seq))


def gzip_lines(lines: list[bytes]) -> bytes:
    """Gzip JSON lines with a fixed mtime, so the same lines always give the same bytes."""
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6, mtime=0)


def quarantine_lines(entries: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e, separators=(",", ":"), sort_keys=True).encode() for e in entries]


def flush_objects(buffer: FlushBuffer, shard_id: str) -> list[tuple[str, str, bytes]]:
    """(role, key, body) for every object one flush writes; role is "raw" or "quarantine"."""
    if buffer.first_seq is None or buffer.last_seq is None:
        return []
    first, last = buffer.first_seq, buffer.last_seq
    out = [
        ("raw", raw_key(dt, shard_id, first, last), gzip_lines(lines))
        for dt, lines in sorted(buffer.good.items())
    ]
    out += [
        ("quarantine", quarantine_key(dt, shard_id, first, last), gzip_lines(quarantine_lines(e)))
        for dt, e in sorted(buffer.bad.items())
    ]
    return out


# ---- when to flush (pure; ShardReader.run applies these) ----------------------------------------
def size_flush_due(buffer: FlushBuffer, max_records: int, max_bytes: int) -> bool:
    """A buffer is written once it holds ``max_records`` records or ``max_bytes`` bytes."""
    return buffer.records >= max_records or buffer.bytes >= max_bytes


def replay_flush_due(sequence_number: str, pending_last: str | None) -> bool:
    """While replaying an unfinished flush, write exactly when its last record is read again,
    so the object gets the same name as before (exactly-once)."""
    return pending_last is not None and int(sequence_number) >= int(pending_last)


@dataclass(frozen=True)
class PageEnd:
    """What to do once a GetRecords page has been judged: flush the buffer, stop reading."""

    flush: bool
    stop: bool


def after_page(
    buffer: FlushBuffer,
    page_records: int,
    get_limit: int,
    now: float,
    buffer_seconds: float,
    caught_up: bool,
    follow: bool,
    stopping: bool,
    replaying: bool,
) -> PageEnd:
    """The flush rules at the end of a page.

    Time-based flushes are for latency at the tip of the stream; while draining a backlog (full
    pages) size decides, so replays give fewer, larger objects. A replayed flush is written only
    when its last record is read again, except when a drain ends before finding it (trimmed):
    then what was read is written. Stopping before a replayed flush is complete leaves it for
    the next run.
    """
    near_tip = page_records < get_limit
    aged = near_tip and buffer.started is not None and now - buffer.started >= buffer_seconds
    done = caught_up and not follow
    stop = stopping or done
    if not replaying:
        return PageEnd(flush=aged or stop, stop=stop)
    return PageEnd(flush=done and not stopping, stop=stop)
