from __future__ import annotations

import itertools
import json
import random
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ingestion.producer import Producer, ProducerError, RateLimit, TokenBucket
from ingestion.records import hash_key
from riskstream.events import new_event
from riskstream.settings import Settings
from tests.ingestion.helpers import make_client, read_stream, small_events

pytestmark = pytest.mark.integration


class FlakyKinesis:
    """A real client whose PutRecords fails some entries (or whole calls) on purpose.

    Failed entries are not sent to the server, as Kinesis does with a partial failure.
    """

    def __init__(
        self,
        real: Any,
        entry_failure: float = 0.0,
        call_failures: int = 0,
        always_fail: set[str] | None = None,
        code: str = "ProvisionedThroughputExceededException",
        seed: int = 1,
    ) -> None:
        self.real = real
        self.entry_failure = entry_failure
        self.call_failures = call_failures
        self.always_fail = always_fail or set()
        self.code = code
        self.rng = random.Random(seed)
        self.calls = 0
        self.failed_entries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.calls += 1
        if self.calls <= self.call_failures:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "slow down",
                    }
                },
                "PutRecords",
            )
        fail = [
            r["PartitionKey"] in self.always_fail or self.rng.random() < self.entry_failure
            for r in Records
        ]
        keep = [r for r, f in zip(Records, fail, strict=True) if not f]
        results = iter(
            self.real.put_records(StreamName=StreamName, Records=keep)["Records"] if keep else []
        )
        out = []
        for f in fail:
            if f:
                self.failed_entries += 1
                out.append({"ErrorCode": self.code, "ErrorMessage": "Rate exceeded for shard"})
            else:
                out.append(next(results))
        return {"FailedRecordCount": sum(fail), "Records": out}


def _sent_ids(settings: Settings) -> list[str]:
    return [json.loads(r["Data"])["event_id"] for r in read_stream(settings)]


def test_every_event_lands_on_the_stream_once_in_account_order(provisioned: Settings) -> None:
    events = small_events(accounts=30, per_account=12)
    report = Producer(make_client(provisioned, "kinesis"), provisioned.stream_name).send(events)
    assert report.sent == len(events) == 360
    assert (report.retried, report.failed, report.rejected, report.unsent) == (0, [], [], 0)
    records = read_stream(provisioned)
    ids = [json.loads(r["Data"])["event_id"] for r in records]
    assert sorted(ids) == sorted(e["event_id"] for e in events)
    # partition key = account_id; each account on one shard, its events in the order sent
    per_account: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in records:
        event = json.loads(r["Data"])
        assert r["PartitionKey"] == event["account_id"]
        per_account[event["account_id"]].append((r["shard"], event["event_id"]))
    expected = defaultdict(list)
    for e in events:
        expected[e["account_id"]].append(e["event_id"])
    for account, seen in per_account.items():
        assert len({shard for shard, _ in seen}) == 1
        assert [i for _, i in seen] == expected[account]


def test_partial_failures_retry_only_failed_entries(provisioned: Settings) -> None:
    events = small_events(accounts=25, per_account=20)
    flaky = FlakyKinesis(make_client(provisioned, "kinesis"), entry_failure=0.3, call_failures=2)
    delays: list[float] = []
    report = Producer(
        flaky, provisioned.stream_name, sleep=delays.append, seed=3, max_attempts=20
    ).send(events)
    assert report.sent == len(events) and not report.failed
    assert report.retried >= flaky.failed_entries > 50  # whole-call failures retried too
    ids = _sent_ids(provisioned)
    assert len(ids) == len(set(ids)) == len(events)  # nothing sent twice
    assert delays and all(0 <= d <= 2.0 for d in delays)


def test_records_that_never_get_through_are_reported(provisioned: Settings) -> None:
    events = small_events(accounts=10, per_account=5)
    flaky = FlakyKinesis(make_client(provisioned, "kinesis"), always_fail={"A0003"})
    delays: list[float] = []
    report = Producer(
        flaky, provisioned.stream_name, sleep=delays.append, max_attempts=4, base_delay=0.1, seed=2
    ).send(events)
    assert report.sent == 45
    assert len(report.failed) == 5
    assert {f.account_id for f in report.failed} == {"A0003"}
    assert {f.reason for f in report.failed} == {"ProvisionedThroughputExceededException"}
    assert all("after 4 attempts" in f.detail for f in report.failed)
    # exponential backoff with full jitter: attempt k waits at most base * 2**k
    assert len(delays) == 3 and all(d <= 0.1 * 2 ** (k + 1) for k, d in enumerate(delays))
    assert sorted(report.summary()["reasons"]) == ["ProvisionedThroughputExceededException"]


def test_non_retryable_entry_errors_are_reported_at_once(provisioned: Settings) -> None:
    flaky = FlakyKinesis(
        make_client(provisioned, "kinesis"), always_fail={"A0001"}, code="KMSAccessDeniedException"
    )
    report = Producer(flaky, provisioned.stream_name, sleep=lambda s: None).send(
        small_events(accounts=3, per_account=2)
    )
    assert report.sent == 4 and report.retried == 0
    assert [f.reason for f in report.failed] == ["KMSAccessDeniedException"] * 2


def test_unsendable_events_are_rejected_with_reasons(provisioned: Settings) -> None:
    good = small_events(accounts=2, per_account=2)
    big = new_event(
        "account_opened",
        "BIG",
        datetime(2025, 1, 1, tzinfo=UTC),
        {"credit_limit": 5.0, "attributes": {"blob": "x" * 1_100_000}},
        source="test",
    )
    bad = new_event(
        "purchase", "BAD", datetime(2025, 1, 1, tzinfo=UTC), {"amount": "ten"}, source="test"
    )
    report = Producer(make_client(provisioned, "kinesis"), provisioned.stream_name).send(
        [*good, big, bad, good[0]]
    )
    assert report.sent == 4
    assert [(r.reason, r.account_id) for r in report.rejected] == [
        ("oversize", "BIG"),
        ("bad_type", "BAD"),
        ("duplicate_event_id", "A0000"),
    ]
    assert len(_sent_ids(provisioned)) == 4


def test_interrupt_stops_cleanly_with_a_summary(provisioned: Settings) -> None:
    events = small_events(accounts=20, per_account=60)

    def interrupted() -> Any:
        for i, event in enumerate(events):
            if i == 700:
                raise KeyboardInterrupt
            yield event

    report = Producer(
        make_client(provisioned, "kinesis"), provisioned.stream_name, max_batch_records=100
    ).send(interrupted())
    assert report.interrupted
    assert report.sent + report.unsent + len(report.failed) == 700
    assert 0 < report.sent <= 700
    assert len(_sent_ids(provisioned)) == report.sent


def test_rate_limit_paces_each_shard(provisioned: Settings) -> None:
    events = small_events(accounts=40, per_account=15)  # 600 records over 2 shards
    lanes = defaultdict(int)
    for e in events:
        lanes[hash_key(e["account_id"]) >= 2**127] += 1
    # Virtual time per lane thread: only the pacing sleeps advance it, so the pace is measured
    # exactly, whatever the machine's load (the wall clock also counts the server's time).
    lane_time: dict[int, float] = defaultdict(float)

    def clock() -> float:
        return lane_time[threading.get_ident()]

    def sleep(seconds: float) -> None:
        lane_time[threading.get_ident()] += seconds

    report = Producer(
        make_client(provisioned, "kinesis"),
        provisioned.stream_name,
        rate_limit=RateLimit(records_per_second=150, bytes_per_second=10_000_000),
        max_batch_records=50,
        sleep=sleep,
        clock=clock,
    ).send(events)
    assert report.sent == 600
    assert len(lane_time) == 2  # each shard's lane paced itself
    # a lane may burst 150 records (one second's worth), then goes at 150/s
    slowest = (max(lanes.values()) - 150) / 150
    paced = max(lane_time.values())
    assert slowest * 0.8 <= paced <= slowest + 4


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(1000, clock=lambda: now[0])
    assert bucket.take(1000) == 0
    assert bucket.take(500) == pytest.approx(0.5)
    now[0] = 1.5  # debt repaid, bucket refilled to 1000 (capped)
    assert bucket.take(1000) == 0


def test_missing_stream_is_a_clear_error(isolated_settings: Settings) -> None:
    producer = Producer(make_client(isolated_settings, "kinesis"), "no-such-stream")
    with pytest.raises(ProducerError, match="riskstream provision"):
        producer.send(small_events(1, 1))


def test_lanes_follow_the_servers_shard_placement(provisioned: Settings) -> None:
    Producer(make_client(provisioned, "kinesis"), provisioned.stream_name).send(
        small_events(accounts=50, per_account=1)
    )
    shards = make_client(provisioned, "kinesis").list_shards(StreamName=provisioned.stream_name)
    ranges = {
        s["ShardId"]: (
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in shards["Shards"]
    }
    for record in read_stream(provisioned):
        low, high = ranges[record["shard"]]
        assert low <= hash_key(record["PartitionKey"]) <= high
    assert list(itertools.islice(ranges, 3))  # at least one shard
