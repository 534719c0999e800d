"""Kinesis helpers: listing every shard across pages; reading a whole stream back."""

from __future__ import annotations

from typing import Any

import pytest

from infra.kinesis import list_shards, read_stream_records

pytestmark = pytest.mark.unit


class FakeKinesis:
    """Two shards: one open with two pages then empty pages, one closed (no next iterator)."""

    def __init__(self) -> None:
        self.pages = {
            "open-0": ([{"SequenceNumber": "1"}, {"SequenceNumber": "2"}], "open-1"),
            "open-1": ([{"SequenceNumber": "3"}], "open-2"),
            "open-2": ([], "open-2"),
            "closed-0": ([{"SequenceNumber": "9"}], None),
        }
        self.limits: list[int] = []

    def list_shards(self, StreamName: str) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "shard-a"}, {"ShardId": "shard-b"}]}

    def get_shard_iterator(self, **kwargs: str) -> dict[str, str]:
        assert kwargs["ShardIteratorType"] == "TRIM_HORIZON"
        return {"ShardIterator": {"shard-a": "open-0", "shard-b": "closed-0"}[kwargs["ShardId"]]}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.limits.append(Limit)
        records, following = self.pages[ShardIterator]
        page: dict[str, Any] = {"Records": records}
        if following is not None:
            page["NextShardIterator"] = following
        return page


def test_every_record_of_every_shard_in_order_until_an_empty_page_or_a_closed_shard() -> None:
    kinesis = FakeKinesis()
    got = [(shard, r["SequenceNumber"]) for shard, r in read_stream_records(kinesis, "s")]
    assert got == [("shard-a", "1"), ("shard-a", "2"), ("shard-a", "3"), ("shard-b", "9")]
    assert kinesis.limits == [10_000] * 4


def test_list_shards_follows_next_tokens() -> None:
    calls: list[dict[str, str]] = []

    class Paged:
        def list_shards(self, **kwargs: str) -> dict[str, Any]:
            calls.append(kwargs)
            if "NextToken" not in kwargs:
                return {"Shards": [{"ShardId": "a"}], "NextToken": "t1"}
            return {"Shards": [{"ShardId": "b"}]}

    assert list_shards(Paged(), "s") == [{"ShardId": "a"}, {"ShardId": "b"}]
    assert calls == [{"StreamName": "s"}, {"NextToken": "t1"}]
