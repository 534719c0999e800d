"""Landing through the cloud going away: a kill -9 and restart of the (durable) local cloud
under a --follow consumer, throttling, and a clean stop that hands the shards over at once."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.services import ManagedService
from infra.shards import CheckpointStore, CloudUnreachableError, RetryPolicy
from ingestion.consumer import Consumer, LandingConfig, LandingReport, LeaseHeldError
from ingestion.ids import event_id
from ingestion.landing import FlushBuffer
from riskstream.background import in_thread
from riskstream.clients import make_client as fresh_client
from riskstream.settings import Settings
from tests.conftest import durable_cloud_on_a_free_port
from tests.ingestion.helpers import (
    FAST_RETRY,
    consume_command,
    follower_config,
    landed_ids,
    make_client,
    produce,
    quarantined,
    raw_lines,
    small_events,
)
from tests.throttling import Throttled

pytestmark = pytest.mark.integration


def consumer(settings: Settings, clients: dict[str, Any] | None = None, **kw: Any) -> Consumer:
    clients = clients or {}
    return Consumer(
        clients.get("kinesis") or make_client(settings, "kinesis"),
        clients.get("s3") or make_client(settings, "s3"),
        clients.get("dynamodb") or make_client(settings, "dynamodb"),
        stream_name=settings.stream_name,
        raw_bucket=kw.pop("raw_bucket", settings.bucket("raw")),
        quarantine_bucket=settings.bucket("quarantine"),
        checkpoint_table=settings.checkpoint_table,
        rng=random.Random(11),
        **kw,
    )


def renamed(events: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The same events for other accounts, under other ids (a later batch of the stream)."""
    out = []
    for i, e in enumerate(events):
        e = dict(e)
        e["account_id"] = tag + e["account_id"]
        e["event_id"] = event_id(tag, e["account_id"], e["event_type"], e["event_time"], i)
        out.append(e)
    return out


def lease_rows(settings: Settings) -> list[dict[str, Any]]:
    items = make_client(settings, "dynamodb").scan(TableName=settings.checkpoint_table)["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


@pytest.fixture
def durable_cloud(tmp_path: Path) -> Iterator[tuple[Settings, ManagedService]]:
    """A durable cloud of this test's own on a free port, so the test may kill -9 it."""
    with durable_cloud_on_a_free_port(tmp_path / "state", "rsout") as running:
        yield running


@pytest.mark.timeout(600)  # a bound on a hang; the deadlines below are bounds too
def test_follow_lands_through_a_kill_9_and_restart_of_the_cloud(
    durable_cloud: tuple[Settings, ManagedService], caplog: pytest.LogCaptureFixture
) -> None:
    settings, service = durable_cloud
    base = small_events(accounts=20, per_account=20, days=2)  # 400 events
    first, second = base[:100], base[100:]
    third = renamed(small_events(accounts=10, per_account=10, days=1), "Z")  # after the restart
    flushed = [0]
    killed = threading.Event()
    lock = threading.Lock()

    def on_flush(shard_id: str, buffer: FlushBuffer) -> None:
        with lock:
            flushed[0] += buffer.records
            # mid-stream for certain: the first flush past 140 records kills the cloud
            if flushed[0] >= 140 and not killed.is_set():
                pid = service.status().pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.set()

    config = follower_config(buffer_records=10)
    # clients of its own: the helpers' cached ones are shared with other tests' threads
    clients = {s: fresh_client(settings, s) for s in ("kinesis", "s3", "dynamodb")}
    follower = consumer(settings, clients, owner="follower", config=config, on_flush=on_flush)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["report"] = follower.run(follow=True, max_seconds=500)
        except BaseException as exc:  # the test fails on it below
            out["error"] = exc

    produce(settings, first)
    caplog.set_level(logging.WARNING, logger="infra.shards")
    with in_thread(run, follower.stop, name="follower", join_timeout=120) as thread:
        deadline = time.monotonic() + 120
        while flushed[0] < len(first) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert flushed[0] == len(first), out
        produce(settings, second)
        assert killed.wait(120), "the cloud was never killed"
        time.sleep(1.0)  # the consumer meets a dead cloud for a while
        assert thread.is_alive(), out
        assert any("cloud unreachable since" in r.getMessage() for r in caplog.records)
        service.up()  # the same state dir: Kinesis records, objects and checkpoints survive
        produce(settings, third)
        everything = first + second + third
        deadline = time.monotonic() + 240
        while flushed[0] < len(everything) and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
        assert thread.is_alive(), out  # never exited on its own
    assert not thread.is_alive()
    assert "error" not in out, out.get("error")
    report: LandingReport = out["report"]
    assert not report.interrupted
    assert report.outages >= 1 and report.retries >= 1 and report.outage_seconds > 0
    ids = landed_ids(settings)
    assert len(ids) == len(everything)  # nothing landed twice
    assert sorted(ids) == sorted(e["event_id"] for e in everything)  # nothing lost
    assert quarantined(settings) == []  # and nothing re-read as a duplicate
    # a flush re-written after the outage went under its old name: per shard, the sequence
    # ranges in the object names never overlap (an hour boundary repeats one range, no more)
    ranges: dict[str, set[tuple[int, int]]] = {}
    for key in raw_lines(settings):
        shard, first, last = key.rsplit("/", 1)[1].removesuffix(".jsonl.gz").rsplit("-", 2)
        ranges.setdefault(shard, set()).add((int(first), int(last)))
    for shard, spans in ranges.items():
        ordered = sorted(spans)
        assert all(a[1] < b[0] for a, b in pairwise(ordered)), (
            shard,
            ordered,
        )
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cloud unreachable since" in m for m in messages) == 1, messages
    assert sum("cloud reachable again" in m for m in messages) == 1, messages
    # the leases were released on the way out
    assert all("owner" not in row for row in lease_rows(settings))


def test_a_drain_gives_up_after_max_outage_seconds_with_a_clear_error(
    durable_cloud: tuple[Settings, ManagedService],
) -> None:
    settings, service = durable_cloud
    produce(settings, small_events(accounts=4, per_account=2))
    service.down()
    config = LandingConfig(
        retry=RetryPolicy(base_seconds=0.05, cap_seconds=0.2, max_outage_seconds=1.0)
    )
    once = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
    clients = {s: fresh_client(settings, s, config=once) for s in ("kinesis", "s3", "dynamodb")}
    started = time.monotonic()
    with pytest.raises(CloudUnreachableError, match=r"max_outage_seconds=1\b.*resumes from"):
        consumer(settings, clients, owner="drain", config=config).run()
    assert time.monotonic() - started < 30


def test_throttling_is_retried_then_everything_lands_once(provisioned: Settings) -> None:
    events = small_events(accounts=10, per_account=5)
    produce(provisioned, events)

    clients = {
        "kinesis": Throttled(
            make_client(provisioned, "kinesis"),
            "get_records",
            "ProvisionedThroughputExceededException",
            3,
        ),
        "s3": Throttled(make_client(provisioned, "s3"), "put_object", "SlowDown", 1, status=503),
        "dynamodb": Throttled(
            make_client(provisioned, "dynamodb"), "update_item", "ThrottlingException", 1
        ),
    }
    config = LandingConfig(buffer_records=20, retry=FAST_RETRY)
    report = consumer(provisioned, clients, owner="slow", config=config).run()
    assert (report.throttled, report.retries, report.outages) == (5, 5, 0)
    assert report.landed == len(events)
    ids = landed_ids(provisioned)
    assert len(ids) == len(events) and set(ids) == {e["event_id"] for e in events}


def test_a_clean_stop_hands_the_shards_to_a_successor_at_once(provisioned: Settings) -> None:
    """`riskstream consume --follow` stopped with SIGTERM releases its leases; another consumer
    then starts well inside the lease time (30 s) instead of being refused."""
    events = small_events(accounts=10, per_account=4)
    produce(provisioned, events)
    argv, env = consume_command(
        provisioned, "--follow", "--buffer-seconds", "0.5", "--consumer-id", "first"
    )
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            rows = lease_rows(provisioned)
            owned = [r for r in rows if r.get("owner") == "first"]
            if len(owned) == 2 and len(landed_ids(provisioned)) == len(events):
                break
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert len(landed_ids(provisioned)) == len(events)
        with pytest.raises(LeaseHeldError, match="leased by consumer 'first'"):
            consumer(provisioned, owner="early").run()  # while it runs, it holds the shards
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err.decode()[-2000:]
    rows = lease_rows(provisioned)
    assert len(rows) == 2 and all("owner" not in r and r["checkpoint"] for r in rows), rows
    more = renamed(small_events(accounts=3, per_account=2), "S")
    produce(provisioned, more)
    started = time.monotonic()
    report = consumer(provisioned, owner="successor").run()
    assert time.monotonic() - started < 10  # not the 30 s of an expired lease
    assert report.landed == len(more)
    assert sorted(landed_ids(provisioned)) == sorted(e["event_id"] for e in events + more)


def test_two_applications_of_one_stream_keep_their_own_leases_and_checkpoints(
    provisioned: Settings,
) -> None:
    events = small_events(accounts=6, per_account=3)
    produce(provisioned, events)
    ddb = make_client(provisioned, "dynamodb")
    shard = "shardId-000000000000"
    landing = CheckpointStore(ddb, provisioned.checkpoint_table, provisioned.stream_name, "a")
    other = CheckpointStore(
        ddb, provisioned.checkpoint_table, provisioned.stream_name, "b", application="replica"
    )
    landing.acquire(shard)
    other.acquire(shard)  # no LeaseHeldError: another application's lease
    other.commit(shard, "123")
    assert "checkpoint" not in landing.read(shard) and other.read(shard)["checkpoint"] == "123"
    assert landing.release(shard) and other.release(shard)
    assert consumer(provisioned, owner="l").run().landed == len(events)
    replica = consumer(
        provisioned, owner="r", application="replica2", raw_bucket=provisioned.bucket("artifacts")
    ).run()
    assert replica.landed == len(events)  # from the oldest record: its own checkpoints
    keys = sorted(r["lease_key"] for r in lease_rows(provisioned))
    stream = provisioned.stream_name
    assert [k for k in keys if k.startswith("replica2:")] == [
        f"replica2:{stream}/shardId-000000000000",
        f"replica2:{stream}/shardId-000000000001",
    ]
    assert f"{stream}/shardId-000000000001" in keys  # landing's, as before applications


def test_the_cli_drain_says_the_cloud_stayed_away_and_follow_takes_no_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from infra.services import free_port
    from pipeline.cli import main

    monkeypatch.setenv("RISKSTREAM_TARGET", "embedded")
    monkeypatch.setenv("RISKSTREAM_CLOUD_PORT", str(free_port()))  # nobody listens there
    monkeypatch.setenv("RISKSTREAM_PREFIX", "rsnone")
    monkeypatch.setenv("RISKSTREAM_STATE_DIR", str(tmp_path))
    argv = ["--env-file", "/nonexistent", "consume"]
    assert main([*argv, "--follow", "--max-outage-seconds", "5"]) == 1
    assert "--max-outage-seconds goes with --once" in caplog.text
    started = time.monotonic()
    assert main([*argv, "--once", "--max-outage-seconds", "1"]) == 1
    assert time.monotonic() - started < 60  # botocore's own retries, then ours give up
    assert "stayed unreachable" in caplog.text
    assert "gave up after max_outage_seconds=1" in caplog.text
    assert "Nothing is lost: the next run resumes from the checkpoints" in caplog.text


def test_a_run_ending_on_an_error_still_releases_its_leases(provisioned: Settings) -> None:
    """Only a crash (kill -9) leaves leases to expire; an error the consumer sees gives them up."""
    produce(provisioned, small_events(accounts=6, per_account=2))

    class Denied:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            if name != "put_object":
                return getattr(self.real, name)

            def refuse(**kwargs: Any) -> Any:
                raise ClientError(
                    {
                        "Error": {"Code": "AccessDenied", "Message": "no"},
                        "ResponseMetadata": {"HTTPStatusCode": 403},
                    },
                    "PutObject",
                )

            return refuse

    denied = {"s3": Denied(make_client(provisioned, "s3"))}
    with pytest.raises(ClientError, match="AccessDenied"):
        consumer(provisioned, denied, owner="denied", config=LandingConfig(retry=FAST_RETRY)).run()
    rows = lease_rows(provisioned)
    assert len(rows) == 2 and all("owner" not in r for r in rows), rows
    assert all("checkpoint" not in r for r in rows)  # nothing was written, nothing moved
    assert consumer(provisioned, owner="next").run().landed == 12  # at once, not in 30 s


def test_an_answer_without_a_next_iterator_does_not_close_an_open_shard(
    provisioned: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a closed shard ends without a next iterator; an open one is read on (a cut answer
    once made the consumer mark a live shard SHARD_END and stop landing it)."""
    events = small_events(accounts=10, per_account=4)
    produce(provisioned, events)

    class NoNext:
        def __init__(self, real: Any) -> None:
            self.real, self.dropped = real, 0

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self.real, name)
            if name != "get_records":
                return attr

            def first_page_without_next(**kwargs: Any) -> Any:
                page = attr(**kwargs)
                if page["Records"] and self.dropped < 2:
                    self.dropped += 1
                    page.pop("NextShardIterator")
                return page

            return first_page_without_next

    kinesis = NoNext(make_client(provisioned, "kinesis"))
    caplog.set_level(logging.WARNING, logger="ingestion.consumer")
    report = consumer(provisioned, {"kinesis": kinesis}, owner="cut").run()
    assert kinesis.dropped == 2 and report.landed == len(events)
    more = renamed(small_events(accounts=4, per_account=2), "M")
    produce(provisioned, more)
    assert consumer(provisioned, owner="after").run().landed == len(more)  # not SHARD_END
    rows = lease_rows(provisioned)
    assert all(r["checkpoint"].isdigit() for r in rows), rows
    assert (
        sum("gave no next iterator but the shard is open" in r.getMessage() for r in caplog.records)
        == 2
    )
    assert sorted(landed_ids(provisioned)) == sorted(e["event_id"] for e in events + more)
