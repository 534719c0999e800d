"""Shared helpers for the ingestion tests: small event sets and readers of what landed."""

from __future__ import annotations

import gzip
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.kinesis import read_stream_records
from infra.shards import RetryPolicy
from ingestion.consumer import LandingConfig
from ingestion.ids import event_id
from riskstream.clients import make_client as _make_client
from riskstream.events import new_event
from riskstream.settings import Settings

_CLIENTS: dict[tuple[str | None, str, str], Any] = {}
FAST_RETRY = RetryPolicy(base_seconds=0.05, cap_seconds=0.5)  # backoff for tests that wait


def follower_config(buffer_records: int) -> LandingConfig:
    """Landing that follows the stream through an outage of the cloud quickly: short buffers,
    polls, leases and backoff; the lag logged every second."""
    return LandingConfig(
        buffer_records=buffer_records,
        buffer_seconds=0.3,
        idle_sleep=0.05,
        lease_seconds=5,
        lag_report_seconds=1,
        retry=FAST_RETRY,
    )


def make_client(settings: Settings, service: str) -> Any:
    """A cached client per endpoint and service (boto3 clients are slow to build)."""
    key = (settings.endpoint_for(service), settings.region, service)
    if key not in _CLIENTS:
        _CLIENTS[key] = _make_client(settings, service)
    return _CLIENTS[key]


def small_events(accounts: int = 20, per_account: int = 10, days: int = 3) -> list[dict]:
    """Purchases over a few days (few date partitions), each account's in time order."""
    start = datetime(2025, 3, 1, 8, tzinfo=UTC)
    out = []
    for i in range(per_account):
        for a in range(accounts):
            when = start + timedelta(days=i % days, minutes=i)
            account = f"A{a:04d}"
            out.append(
                new_event(
                    "purchase",
                    account,
                    when,
                    {"amount": float(1 + i + a), "merchant_category": "grocery"},
                    source="test",
                    event_id=event_id("test", account, "purchase", when.isoformat(), i),
                )
            )
    return out


def produce(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Put ``events`` on the stream with the producer, every one accepted (a client of its own:
    the outage tests produce again after the cloud restarted)."""
    from ingestion.producer import Producer

    report = Producer(_make_client(settings, "kinesis"), settings.stream_name).send(events)
    assert report.sent == len(events), report.summary()


def read_stream(settings: Settings) -> list[dict[str, Any]]:
    """Every record on every shard, in shard order (for checking what the producer sent)."""
    kinesis = make_client(settings, "kinesis")
    return [
        {"shard": shard_id, **record}
        for shard_id, record in read_stream_records(kinesis, settings.stream_name)
    ]


def _objects(settings: Settings, role: str, prefix: str) -> dict[str, bytes]:
    s3 = make_client(settings, "s3")
    bucket = settings.bucket(role)
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"]] = gzip.decompress(body)
    return out


def raw_lines(settings: Settings) -> dict[str, list[bytes]]:
    """Raw landing: key -> lines."""
    return {k: v.splitlines() for k, v in _objects(settings, "raw", "events/").items()}


def landed_ids(settings: Settings) -> list[str]:
    return [
        json.loads(line)["event_id"] for lines in raw_lines(settings).values() for line in lines
    ]


def quarantined(settings: Settings) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for body in _objects(settings, "quarantine", "ingest/").values()
        for line in body.splitlines()
    ]


def clear_landing(settings: Settings) -> None:
    """Empty the raw and quarantine buckets and the checkpoint table (between trials)."""
    s3 = make_client(settings, "s3")
    for role in ("raw", "quarantine"):
        bucket = settings.bucket(role)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    ddb = make_client(settings, "dynamodb")
    for item in ddb.scan(TableName=settings.checkpoint_table).get("Items", []):
        ddb.delete_item(TableName=settings.checkpoint_table, Key={"lease_key": item["lease_key"]})


def consume_command(settings: Settings, *args: str) -> tuple[list[str], dict[str, str]]:
    """``riskstream consume ARGS`` against ``settings``: its argv and its environment, built by
    Settings.to_env (the way settings reach every child process)."""
    riskstream = str(Path(sys.executable).with_name("riskstream"))
    argv = [riskstream, "--env-file", "/nonexistent", "consume", *args]
    return argv, {**os.environ, **settings.to_env()}
