"""Reading a whole Kinesis stream back, for checks: the crash drill, tests and benchmarks.

Not a consumer (ingestion/consumer.py keeps leases and checkpoints): this reads every shard once,
from its oldest record, and stops at the first empty page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def read_stream_records(
    kinesis: Any, stream_name: str, *, page_size: int = 10_000
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(shard id, record) for every record on every shard, shard by shard in listed order.

    Each shard is read from TRIM_HORIZON until a page comes back empty or the shard ends (a
    closed shard's last page has no next iterator).
    """
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
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
