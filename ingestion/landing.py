"""What the consumer does to records between reading and writing. Pure module.

Each Kinesis record is checked against the contract (``riskstream.events.validate`` with the
record's arrival time as ``now``, so a replay judges it exactly as the first pass did) and sorted
into good lines by event date or quarantine entries by arrival date. Object keys come from the
shard and the sequence range of the flush, so rewriting a flush after a crash rewrites the same
objects.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from riskstream.events import EventValidationError, decode, parse_time, validate

RAW_PREFIX = "events"
QUARANTINE_PREFIX = "ingest"


@dataclass(frozen=True)
class Verdict:
    """The outcome for one record: a date partition and either the line or a quarantine entry."""

    dt: str
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
    """Validate one record. Good: its exact bytes under the UTC date of its event_time.

    Bad (any contract violation, a line break inside the record, or an event_id already in
    ``seen``): a quarantine entry with reason, detail and the original bytes in base64, under the
    UTC date it arrived.
    """
    arrived = arrived.astimezone(UTC)
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
        return Verdict(arrived.date().isoformat(), quarantine=entry)
    when: str = event["event_time"]
    dt = when[:10] if when.endswith("Z") else parse_time(when).date().isoformat()
    return Verdict(dt, line=data, event_id=event_id)


@dataclass
class FlushBuffer:
    """Records of one shard waiting to be written, grouped by date partition."""

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
            self.good[verdict.dt].append(verdict.line)
        else:
            assert verdict.quarantine is not None
            self.bad[verdict.dt].append(verdict.quarantine)

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


def raw_key(dt: str, shard_id: str, first_seq: str, last_seq: str) -> str:
    return f"{RAW_PREFIX}/dt={dt}/{object_name(shard_id, first_seq, last_seq)}"


def quarantine_key(dt: str, shard_id: str, first_seq: str, last_seq: str) -> str:
    return f"{QUARANTINE_PREFIX}/dt={dt}/{object_name(shard_id, first_seq, last_seq)}"


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
