from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from ingestion import records
from ingestion.records import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    Record,
    Rejected,
    SeenIds,
    batches,
    hash_key,
    prepare,
    shard_index,
    shard_ranges,
    to_record,
)
from riskstream.events import MAX_RECORD_BYTES, EventValidationError, new_event, serialize

pytestmark = pytest.mark.unit

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def purchase(account: str = "A1", amount: float = 10.0, **kw: object) -> dict:
    return new_event(
        "purchase",
        account,
        datetime(2025, 5, 1, 12, tzinfo=UTC),
        {"amount": amount, "merchant_category": "grocery"},
        source="test",
        **kw,  # type: ignore[arg-type]
    )


def test_record_is_the_serialized_event_keyed_by_account() -> None:
    event = purchase("A7")
    record = to_record(event, NOW)
    assert record.data == serialize(event)
    assert record.partition_key == "A7"
    assert record.event_id == event["event_id"]
    assert record.size == len(record.data) + 2


def test_invalid_event_is_rejected_with_the_contract_reason() -> None:
    event = purchase(amount=-3)
    with pytest.raises(EventValidationError) as info:
        to_record(event, NOW)
    assert info.value.reason == "out_of_range"


def test_oversize_record_counts_the_partition_key() -> None:
    event = new_event(
        "account_opened",
        "A1",
        datetime(2025, 1, 1, tzinfo=UTC),
        {"credit_limit": 1000.0, "attributes": {"blob": ""}},
        source="t",
    )
    fixed = len(serialize(event)) + len("A1")
    event["payload"]["attributes"]["blob"] = "x" * (MAX_RECORD_BYTES - fixed)
    assert to_record(event, NOW).size == MAX_RECORD_BYTES  # exactly at the limit: fine
    event["payload"]["attributes"]["blob"] += "x"
    with pytest.raises(EventValidationError) as info:
        to_record(event, NOW)
    assert info.value.reason == "oversize"
    assert "1,000,001 bytes" in info.value.detail


def test_prepare_reports_each_unsendable_event_and_keeps_the_rest() -> None:
    good = purchase("A1")
    dup = dict(good)
    bad = purchase("A2", amount=0)
    out = list(prepare([good, bad, dup, "not an event"], NOW))  # type: ignore[list-item]
    assert isinstance(out[0], Record)
    assert [(r.reason, r.account_id) for r in out[1:] if isinstance(r, Rejected)] == [
        ("out_of_range", "A2"),
        ("duplicate_event_id", "A1"),
        ("bad_event", None),
    ]


def test_repeats_are_found_across_chunks_and_within_one_as_a_set_would() -> None:
    rng = random.Random(5)
    pool = [f"id-{i}" for i in range(3000)]
    stream = [rng.choice(pool) for _ in range(20_000)]
    seen: SeenIds = SeenIds()
    answers: list[bool] = []
    for lo in range(0, len(stream), 777):  # chunks of uneven size: runs of every length merge
        answers += seen.add(stream[lo : lo + 777])
    oracle: set[str] = set()
    expected = []
    for i in stream:
        expected.append(i in oracle)
        oracle.add(i)
    assert answers == expected and sum(answers) > 10_000
    assert len(seen) == len(oracle)


def test_prepare_refuses_a_repeat_chunks_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "PREPARE_CHUNK", 3)
    events = [purchase(f"A{i}") for i in range(8)] + [purchase("A2")]
    events[-1]["event_id"] = events[2]["event_id"]
    out = list(prepare(events, NOW))
    assert [type(r).__name__ for r in out] == ["Record"] * 8 + ["Rejected"]
    assert (out[-1].reason, out[-1].account_id) == ("duplicate_event_id", "A2")


def _records(n: int, size: int) -> list[Record]:
    return [Record(b"x" * (size - 3), f"K{i % 10:02d}", str(i)) for i in range(n)]


def test_batches_respect_500_records() -> None:
    out = list(batches(_records(1201, 100)))
    assert [len(b) for b in out] == [500, 500, 201]
    assert [r.event_id for b in out for r in b] == [str(i) for i in range(1201)]


def test_batches_respect_5_mib_per_request() -> None:
    out = list(batches(_records(12, 1_000_000)))
    assert [len(b) for b in out] == [5, 5, 2]
    assert all(sum(r.size for r in b) <= MAX_BATCH_BYTES for b in out)


@pytest.mark.parametrize(
    ("max_records", "max_bytes"), [(0, MAX_BATCH_BYTES), (501, MAX_BATCH_BYTES), (10, 10)]
)
def test_batches_refuse_limits_beyond_the_service(max_records: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        list(batches([], max_records=max_records, max_bytes=max_bytes))


def test_shard_routing_uses_md5_of_the_key() -> None:
    shards = [
        {
            "ShardId": "s0",
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)},
            "SequenceNumberRange": {"StartingSequenceNumber": "1"},
        },
        {
            "ShardId": "s1",
            "HashKeyRange": {"StartingHashKey": str(2**127), "EndingHashKey": str(2**128 - 1)},
            "SequenceNumberRange": {"StartingSequenceNumber": "1"},
        },
        {  # a closed parent: not a target for new records
            "ShardId": "old",
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
            "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"},
        },
    ]
    ranges = shard_ranges(shards)
    assert [r.shard_id for r in ranges] == ["s0", "s1"]
    for key in ("A1", "A2", "SYN0000001", "TW00042"):
        expected = 0 if hash_key(key) < 2**127 else 1
        assert shard_index(key, ranges) == expected
    assert MAX_BATCH_RECORDS == 500
