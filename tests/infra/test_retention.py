"""Kinesis retention on the local cloud as on AWS: records older than the stream's retention period
are trimmed, a consumer whose checkpoint is still kept reads on unaffected, and one whose checkpoint
fell behind the trim horizon reads on from the oldest record kept and is told about the gap."""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.moto_server import CLOCK_PATH
from infra.shards import Retrier, ShardCursor
from riskstream.clients import make_client
from riskstream.settings import Settings

pytestmark = pytest.mark.integration


def move_clock(settings: Settings, hours: float) -> None:
    """Put the cloud's Kinesis clock ``hours`` ahead of real time (a test-only control)."""
    request = urllib.request.Request(
        f"{settings.endpoint_url}{CLOCK_PATH}",
        data=json.dumps({"offset_hours": hours}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"offset_hours": hours}


@pytest.fixture
def stream(cloud_settings: Settings) -> Iterator[tuple[Any, str]]:
    """A one-shard stream of its own; the Kinesis clock back to real time afterwards."""
    kinesis = make_client(cloud_settings, "kinesis")
    name = f"retention-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    try:
        yield kinesis, name
    finally:
        move_clock(cloud_settings, 0)
        kinesis.delete_stream(StreamName=name)


def put(kinesis: Any, name: str, tag: str, n: int) -> list[str]:
    records = [{"Data": f"{tag}{i}".encode(), "PartitionKey": "p"} for i in range(n)]
    answer = kinesis.put_records(StreamName=name, Records=records)
    return [r["SequenceNumber"] for r in answer["Records"]]


def read_after(kinesis: Any, name: str, position: str | None) -> tuple[list[str], ShardCursor]:
    """Every record data after ``position`` (the oldest kept for None), as a consumer reads."""
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    cursor = ShardCursor(kinesis, name, shard, Retrier())
    iterator, data = cursor.iterator_after(position), []
    for _ in range(10):  # bounded: a handful of records
        page = cursor.get(iterator, position)
        if not page["Records"]:
            break
        data += [r["Data"].decode() for r in page["Records"]]
        position, iterator = page["Records"][-1]["SequenceNumber"], page["NextShardIterator"]
    return data, cursor


def test_records_past_retention_are_trimmed_and_a_checkpointed_consumer_reads_on(
    cloud_settings: Settings, stream: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    kinesis, name = stream
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 24  # AWS's default

    first = put(kinesis, name, "a", 10)
    caught_up, lagging = first[-1], first[3]  # two consumers' checkpoints
    assert read_after(kinesis, name, None)[0] == [f"a{i}" for i in range(10)]

    # Kept for 48 hours: a day later every record is still there.
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    move_clock(cloud_settings, 25)
    later = put(kinesis, name, "b", 5)
    assert len(read_after(kinesis, name, None)[0]) == 15

    # Back to 24 hours: the first batch (25 hours old) goes, the second (just sent) stays.
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    kept = [f"b{i}" for i in range(5)]
    assert read_after(kinesis, name, None)[0] == kept
    described = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert described["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"] == later[0]

    # The consumer that had read everything reads on exactly where it was, no warning.
    with caplog.at_level(logging.WARNING, logger="infra.shards"):
        data, cursor = read_after(kinesis, name, caught_up)
    assert (data, cursor.expired) == (kept, [])
    assert not caplog.records

    # The one whose checkpoint expired reads on from the oldest record kept, and is told.
    with caplog.at_level(logging.WARNING, logger="infra.shards"):
        data, cursor = read_after(kinesis, name, lagging)
    assert data == kept
    assert cursor.expired == [(lagging, later[0])]
    assert [r.getMessage() for r in caplog.records if "expired" in r.getMessage()] != []

    # Everything expires; sequence numbers still go on from the last one ever written.
    move_clock(cloud_settings, 50)
    assert read_after(kinesis, name, None)[0] == []
    after = put(kinesis, name, "c", 1)
    assert int(after[0]) == int(later[-1]) + 1
    assert read_after(kinesis, name, None)[0] == ["c0"]
