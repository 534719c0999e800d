"""Kinesis helpers shared by the producer, the consumer, the crash drill, tests and benchmarks.

- :func:`list_shards`: every shard of a stream, following ListShards pagination.
- :func:`read_stream_records`: a whole stream read back once, for checks. Not a consumer
  (ingestion/consumer.py keeps leases and checkpoints): every shard from its oldest record to
  the first empty page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def list_shards(kinesis: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of ``stream_name`` (open and closed), across ListShards pages."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:
        page = kinesis.list_shards(**kwargs)
        shards.extend(page.get("Shards", []))
        token = page.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


def read_stream_records(
    kinesis: Any, stream_name: str, *, page_size: int = 10_000
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(shard id, record) for every record on every shard, shard by shard in listed order.

    Each shard is read from TRIM_HORIZON until a page comes back empty or the shard ends (a
    closed shard's last page has no next iterator).
    """
    for shard in list_shards(kinesis, stream_name):
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=page_size)
            if not page["Records"]:
                break
            for record in page["Records"]:
                yield shard_id, record
            iterator = page.get("NextShardIterator")
