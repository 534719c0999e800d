from __future__ import annotations

import base64
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import pytest

from ingestion.consumer import (
    CheckpointStore,
    Consumer,
    LandingConfig,
    LeaseHeldError,
    LeaseLostError,
    _ready,
)
from ingestion.tasks import make_consumer
from riskstream.events import serialize
from riskstream.settings import Settings
from tests.ingestion.corpus import good, malformed
from tests.ingestion.helpers import (
    clear_landing,
    consume_command,
    landed_ids,
    make_client,
    produce,
    quarantined,
    raw_lines,
    small_events,
)

pytestmark = pytest.mark.integration


class SimulatedCrash(BaseException):
    """Stands in for kill -9: not an Exception, so nothing cleans up after it."""


class CrashAfter:
    """Wraps a real client; the ``n``-th call to ``method`` completes, then the process 'dies'."""

    def __init__(self, real: Any, method: str, n: int) -> None:
        self.real, self.method, self.n, self.calls = real, method, n, 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name != self.method:
            return attr

        def wrapped(**kwargs: Any) -> Any:
            result = attr(**kwargs)
            with self.lock:
                self.calls += 1
                if self.calls == self.n:
                    raise SimulatedCrash(f"crash after {name} #{self.n}")
            return result

        return wrapped


def consumer(settings: Settings, *, s3: Any = None, dynamodb: Any = None, **kw: Any) -> Consumer:
    config = kw.pop("config", None) or LandingConfig(buffer_records=60, buffer_seconds=30)
    return Consumer(
        make_client(settings, "kinesis"),
        s3 or make_client(settings, "s3"),
        dynamodb or make_client(settings, "dynamodb"),
        stream_name=settings.stream_name,
        raw_bucket=settings.bucket("raw"),
        quarantine_bucket=settings.bucket("quarantine"),
        checkpoint_table=settings.checkpoint_table,
        config=config,
        **kw,
    )


def test_produce_then_consume_lands_every_event_exactly_once(provisioned: Settings) -> None:
    events = small_events(accounts=25, per_account=12, days=3)
    produce(provisioned, events)
    report = consumer(provisioned, owner="c1").run()
    assert (report.records, report.landed, report.quarantined) == (300, 300, 0)
    ids = landed_ids(provisioned)
    assert sorted(ids) == sorted(e["event_id"] for e in events)
    lines = raw_lines(provisioned)
    # Partitioned by arrival hour (now), not by event date (three days in March 2025).
    for key in lines:
        _, dt, hr, _name = key.split("/")
        assert dt.startswith("dt=") and len(dt) == 13 and hr.startswith("hr=") and len(hr) == 5
    assert len({k.split("/")[1] for k in lines}) <= 2  # one hour, or two across a boundary
    # exact bytes from the stream
    assert {line for body in lines.values() for line in body} == {serialize(e) for e in events}
    # checkpoints moved, leases released; a second run finds nothing new
    items = make_client(provisioned, "dynamodb").scan(TableName=provisioned.checkpoint_table)[
        "Items"
    ]
    assert len(items) == 2 and all("checkpoint" in i and "owner" not in i for i in items)
    assert consumer(provisioned, owner="c2").run().records == 0
    # and new events are picked up from the checkpoint
    more = small_events(accounts=3, per_account=2, days=1)
    for e in more:
        e["account_id"] = "N" + e["account_id"]
        e["event_id"] = e["event_id"][:-4] + "ffff"
    produce(provisioned, more)
    assert consumer(provisioned, owner="c3").run().landed == 6
    assert len(landed_ids(provisioned)) == 306


@pytest.mark.timeout(300)  # a bound on a hang, not a speed check (speed lives in benchmarks)
def test_consumer_killed_at_random_points_loses_and_duplicates_nothing(
    provisioned: Settings,
) -> None:
    events = small_events(accounts=20, per_account=6, days=3)  # 120 events
    produce(provisioned, events)
    expected = sorted(e["event_id"] for e in events)
    rng = random.Random(20251121)
    trials = 22
    crashes = 0
    for trial in range(trials):
        clear_landing(provisioned)
        config = LandingConfig(
            buffer_records=rng.randint(10, 50), buffer_seconds=30, lease_seconds=1
        )
        owner = f"worker-{trial}"
        # one to three crashes per trial, right after a random S3 or DynamoDB write, then a
        # clean run: the same worker restarting, or (every fifth trial) another one after the
        # dead one's lease expired
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["put_object", "update_item"])
            s3 = make_client(provisioned, "s3")
            ddb = make_client(provisioned, "dynamodb")
            if kind == "put_object":
                s3 = CrashAfter(s3, kind, rng.randint(1, 3))  # a flush is one or two objects
            else:
                ddb = CrashAfter(ddb, kind, rng.randint(1, 8))
            try:
                consumer(provisioned, s3=s3, dynamodb=ddb, owner=owner, config=config).run()
            except SimulatedCrash:
                crashes += 1
        if trial % 5 == 4:
            time.sleep(1.05)
            owner = f"{owner}-takeover"
        consumer(provisioned, owner=owner, config=config).run()
        ids = landed_ids(provisioned)
        assert sorted(ids) == expected, f"trial {trial}"  # every event exactly once, no dedupe
        assert quarantined(provisioned) == []
    assert crashes >= trials  # every trial really crashed at least once mid-way


def test_a_second_consumer_gets_a_clear_error(provisioned: Settings) -> None:
    produce(provisioned, small_events(accounts=4, per_account=2))
    crashing = CrashAfter(make_client(provisioned, "s3"), "put_object", 1)
    with pytest.raises(SimulatedCrash):
        consumer(provisioned, s3=crashing, owner="first").run()
    with pytest.raises(
        LeaseHeldError, match=r"leased by consumer 'first' until .* another consumer"
    ):
        consumer(provisioned, owner="second").run()
    report = consumer(provisioned, owner="first").run()  # the owner itself may resume
    assert report.landed + len(landed_ids(provisioned)) >= 8
    assert sorted(landed_ids(provisioned)) == sorted(set(landed_ids(provisioned)))
    assert len(landed_ids(provisioned)) == 8


def test_a_shard_held_elsewhere_does_not_strand_the_other_shards(provisioned: Settings) -> None:
    produce(provisioned, small_events(accounts=10, per_account=3))
    ddb = make_client(provisioned, "dynamodb")
    shards = make_client(provisioned, "kinesis").list_shards(StreamName=provisioned.stream_name)
    held, free = (s["ShardId"] for s in shards["Shards"])
    other = CheckpointStore(ddb, provisioned.checkpoint_table, provisioned.stream_name, "other")
    other.acquire(held)
    with pytest.raises(LeaseHeldError, match=f"shard {held} .* leased by consumer 'other'"):
        consumer(provisioned, owner="me").run()
    mine = CheckpointStore(ddb, provisioned.checkpoint_table, provisioned.stream_name, "x")
    assert "owner" not in mine.read(free)  # released on the way out
    assert mine.read(held)["owner"] == "other"


def test_a_consumer_whose_lease_was_taken_cannot_move_the_checkpoint(provisioned: Settings) -> None:
    ddb = make_client(provisioned, "dynamodb")
    now = [1000.0]
    a = CheckpointStore(ddb, provisioned.checkpoint_table, "s", "a", 30, clock=lambda: now[0])
    b = CheckpointStore(ddb, provisioned.checkpoint_table, "s", "b", 30, clock=lambda: now[0])
    a.acquire("shard-0")
    a.commit("shard-0", "5")
    with pytest.raises(LeaseHeldError):
        b.acquire("shard-0")
    now[0] += 31  # a stalls past its lease
    state = b.acquire("shard-0")
    assert state.checkpoint == "5"
    with pytest.raises(LeaseLostError, match="lost the lease on shard shard-0 to 'b'"):
        a.commit("shard-0", "9")
    b.commit("shard-0", "7")
    assert a.read("shard-0")["checkpoint"] == "7"


def test_malformed_records_are_quarantined_and_the_stream_keeps_flowing(
    provisioned: Settings,
) -> None:
    kinesis = make_client(provisioned, "kinesis")
    cases = malformed()
    goods = [good(f"G{i}", i) for i in range(len(cases))]
    records = []
    for (_, data, _), ok in zip(cases, goods, strict=True):  # interleave good and bad
        records.append({"Data": data, "PartitionKey": "p"})
        records.append({"Data": serialize(ok), "PartitionKey": ok["account_id"]})
    records.append({"Data": serialize(goods[0]), "PartitionKey": "G0"})  # a duplicate id
    kinesis.put_records(StreamName=provisioned.stream_name, Records=records)
    report = consumer(provisioned, owner="q").run()
    assert report.landed == len(goods)
    assert report.quarantined == len(cases) + 1
    assert sorted(landed_ids(provisioned)) == sorted(g["event_id"] for g in goods)
    entries = quarantined(provisioned)
    by_data = {base64.b64decode(e["data_base64"]): e for e in entries}
    for name, data, reason in cases:
        assert by_data[data]["reason"] == reason, name
        assert by_data[data]["detail"] and by_data[data]["sequence_number"]
    assert Counter(e["reason"] for e in entries)["duplicate_event_id"] == 1
    assert report.reasons["duplicate_event_id"] == 1


def test_follow_lands_while_producing_and_reports_lag(provisioned: Settings) -> None:
    config = LandingConfig(buffer_seconds=0.3, idle_sleep=0.05, lag_report_seconds=0.5)
    follower = consumer(provisioned, owner="f", config=config)
    out: dict[str, Any] = {}
    # max_seconds and the deadlines below only bound a hang; stop() ends the run
    thread = threading.Thread(
        target=lambda: out.update(r=follower.run(follow=True, max_seconds=300))
    )
    thread.start()
    events = small_events(accounts=10, per_account=6)
    for chunk in range(3):
        produce(provisioned, events[chunk * 20 : (chunk + 1) * 20])
        # the next chunk only once this one has landed: a flush per chunk on any machine,
        # however loaded (a fixed pause let a slow follower read all three chunks at once)
        deadline = time.monotonic() + 120
        while len(landed_ids(provisioned)) < (chunk + 1) * 20 and time.monotonic() < deadline:
            time.sleep(0.2)
    follower.stop()
    thread.join(timeout=60)
    assert not thread.is_alive()
    report = out["r"]
    assert report.landed == 60 and report.flushes >= 2
    assert set(report.lag_ms) == {s for s in report.lag_ms} and len(report.lag_ms) == 2
    assert sorted(landed_ids(provisioned)) == sorted(e["event_id"] for e in events)


def test_a_resharded_stream_is_landed_completely(provisioned: Settings) -> None:
    # moto moves a split parent's records into its children (AWS keeps them in the closed
    # parent), so this checks completeness; the parent-before-child order is tested below.
    kinesis = make_client(provisioned, "kinesis")
    first = small_events(accounts=12, per_account=3)
    produce(provisioned, first)
    parent = kinesis.list_shards(StreamName=provisioned.stream_name)["Shards"][0]
    low = int(parent["HashKeyRange"]["StartingHashKey"])
    high = int(parent["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(
        StreamName=provisioned.stream_name,
        ShardToSplit=parent["ShardId"],
        NewStartingHashKey=str((low + high) // 2),
    )
    second = small_events(accounts=12, per_account=6)[36:]
    produce(provisioned, second)
    listed = kinesis.list_shards(StreamName=provisioned.stream_name)["Shards"]
    report = make_consumer(provisioned, owner="split").run()
    assert report.shards == len(listed) >= 3
    assert sorted(landed_ids(provisioned)) == sorted(e["event_id"] for e in first + second)


def test_children_wait_for_their_parents() -> None:
    shards = [
        {"ShardId": "p"},
        {"ShardId": "q"},
        {"ShardId": "c1", "ParentShardId": "p"},
        {"ShardId": "m", "ParentShardId": "c1", "AdjacentParentShardId": "q"},
        {"ShardId": "orphan", "ParentShardId": "trimmed-long-ago"},
    ]
    ids = lambda done, active=(): [s["ShardId"] for s in _ready(shards, set(done), set(active))]  # noqa: E731
    assert ids([]) == ["p", "q", "orphan"]
    assert ids(["p"], ["q", "orphan"]) == ["c1"]
    assert ids(["p", "q", "orphan"], ["c1"]) == []
    assert ids(["p", "q", "orphan", "c1"]) == ["m"]


def test_consumer_process_killed_with_sigkill_then_restarted(provisioned: Settings) -> None:
    """The real thing, twice: `riskstream consume` killed -9 mid-run, then run again."""
    events = small_events(accounts=40, per_account=15, days=3)  # 600 events
    produce(provisioned, events)
    argv, env = consume_command(
        provisioned, "--once", "--buffer-records", "25", "--consumer-id", "killable"
    )
    s3 = make_client(provisioned, "s3")
    rng = random.Random(9)
    kills = 0
    # Twice, and again (at most six rounds) until one run was really killed mid-way: on a fast
    # machine a run may finish before the random moment comes.
    for attempt in range(6):
        if attempt >= 2 and kills >= 1:
            break
        clear_landing(provisioned)
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # kill once it has started landing, at a random point of its run
        deadline = time.monotonic() + 30
        while (
            not s3.list_objects_v2(Bucket=provisioned.bucket("raw"), MaxKeys=1).get("KeyCount")
            and time.monotonic() < deadline
            and process.poll() is None
        ):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        landed_before = len(landed_ids(provisioned))
        done = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        ids = landed_ids(provisioned)
        assert sorted(ids) == sorted(e["event_id"] for e in events)
        assert landed_before <= len(ids)
    assert kills >= 1  # at least one run was really killed mid-way
