from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.landing import FlushBuffer, flush_objects, gzip_lines, judge, raw_key
from riskstream.events import serialize
from tests.ingestion.corpus import ARRIVED, good, malformed

pytestmark = pytest.mark.unit

CASES = malformed()


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "data", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_malformed_record_is_quarantined_with_its_reason(
    name: str, data: bytes, reason: str
) -> None:
    verdict = judge(data, "shard-1", "42", ARRIVED, seen=set())
    assert verdict.line is None, name
    entry = verdict.quarantine
    assert entry is not None
    assert entry["reason"] == reason, entry["detail"]
    assert entry["detail"]
    assert base64.b64decode(entry["data_base64"]) == data
    assert (entry["shard_id"], entry["sequence_number"]) == ("shard-1", "42")
    assert entry["arrived_at"] == "2025-06-01T12:00:00Z"
    assert verdict.partition == "dt=2025-06-01/hr=12"  # quarantine partition: arrival hour


def test_good_record_lands_as_its_exact_bytes_under_its_arrival_hour() -> None:
    event = good()
    data = serialize(event)
    verdict = judge(data, "s", "1", ARRIVED)
    assert verdict.line == data
    assert verdict.partition == "dt=2025-06-01/hr=12"  # arrival, not event_time (2025-05-30)
    assert verdict.event_id == event["event_id"]


def test_arrival_partition_is_the_utc_hour() -> None:
    event = good()
    arrived = datetime.fromisoformat("2025-06-01T01:30:00+05:00")  # 2025-05-31 20:30 UTC
    assert judge(serialize(event), "s", "1", arrived).partition == "dt=2025-05-31/hr=20"


def test_future_is_judged_against_arrival_not_the_wall_clock() -> None:
    event = good()
    event["event_time"] = "2025-06-02T00:00:00Z"  # within a day of arrival: fine
    assert judge(serialize(event), "s", "1", ARRIVED).line is not None
    late = ARRIVED - timedelta(days=3)
    assert judge(serialize(event), "s", "1", late).quarantine["reason"] == "time_out_of_range"


def test_second_copy_of_an_event_id_is_quarantined() -> None:
    seen: set[str] = set()
    data = serialize(good())
    assert judge(data, "s", "1", ARRIVED, seen).line == data
    again = judge(data, "s", "2", ARRIVED, seen)
    assert again.quarantine is not None and again.quarantine["reason"] == "duplicate_event_id"


def test_flush_objects_have_deterministic_names_and_bytes() -> None:
    buffer = FlushBuffer()
    events = [good("A", n) for n in range(3)]
    next_hour = good("B")
    next_hour["event_time"] = "2025-05-29T10:00:00Z"  # an old event: its time does not matter
    arrivals = [ARRIVED, ARRIVED, ARRIVED, ARRIVED + timedelta(hours=1)]
    pairs = zip([*events, next_hour], arrivals, strict=True)
    for seq, (event, arrived) in enumerate(pairs, start=10):
        data = serialize(event)
        buffer.add(judge(data, "shard-7", str(seq), arrived), str(seq), len(data), 0.0)
    buffer.add(judge(b"junk", "shard-7", "14", ARRIVED), "14", 4, 0.0)
    objects = flush_objects(buffer, "shard-7")
    assert [(role, key) for role, key, _ in objects] == [
        ("raw", "events/dt=2025-06-01/hr=12/shard-7-10-14.jsonl.gz"),
        ("raw", "events/dt=2025-06-01/hr=13/shard-7-10-14.jsonl.gz"),
        ("quarantine", "ingest/dt=2025-06-01/hr=12/shard-7-10-14.jsonl.gz"),
    ]
    assert gzip.decompress(objects[0][2]).splitlines() == [serialize(e) for e in events]
    assert json.loads(gzip.decompress(objects[2][2]))["reason"] == "bad_json"
    assert objects == flush_objects(buffer, "shard-7")  # same input, same bytes
    assert gzip_lines([b"a"]) == gzip_lines([b"a"])
    assert (
        raw_key("dt=2025-01-01/hr=00", "s", "1", "2") == "events/dt=2025-01-01/hr=00/s-1-2.jsonl.gz"
    )
    assert (buffer.records, buffer.landed, buffer.quarantined) == (5, 4, 1)


def test_judge_never_reads_the_clock() -> None:
    event = good()
    event["event_time"] = "2030-01-01T00:00:00Z"
    assert judge(serialize(event), "s", "1", datetime(2030, 1, 1, tzinfo=UTC)).line is not None
