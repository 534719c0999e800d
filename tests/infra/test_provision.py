from __future__ import annotations

import pytest

from infra.provision import provision
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings

pytestmark = pytest.mark.integration


def test_provision_creates_everything_then_nothing(isolated_settings: Settings) -> None:
    first = provision(isolated_settings)
    assert {r.action for r in first} == {"created"}
    assert len(first) == 12  # 6 buckets, 2 streams, 2 tables, the Glue database, a queue

    second = provision(isolated_settings)
    assert {r.action for r in second} == {"exists"}
    assert [r.kind for r in second] == [r.kind for r in first]

    s = isolated_settings
    buckets = {b["Name"] for b in make_client(s, "s3").list_buckets()["Buckets"]}
    assert set(s.buckets.values()) <= buckets
    stream = make_client(s, "kinesis").describe_stream_summary(StreamName=s.stream_name)
    assert stream["StreamDescriptionSummary"]["OpenShardCount"] == s.shard_count
    assert stream["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    table = make_client(s, "dynamodb").describe_table(TableName=s.checkpoint_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "lease_key", "KeyType": "HASH"}]
    online = make_client(s, "dynamodb").describe_table(TableName=s.online_table)["Table"]
    assert online["KeySchema"] == [{"AttributeName": "account_id", "KeyType": "HASH"}]
    assert make_client(s, "glue").get_database(Name=s.glue_database)["Database"]["Name"] == (
        s.glue_database
    )
    assert make_client(s, "sqs").get_queue_url(QueueName=names.step_queue_name(s))["QueueUrl"]


def test_shard_count_comes_from_settings(isolated_settings: Settings) -> None:
    settings = isolated_settings.with_overrides(shard_count=3)
    provision(settings)
    summary = make_client(settings, "kinesis").describe_stream_summary(
        StreamName=settings.stream_name
    )["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
