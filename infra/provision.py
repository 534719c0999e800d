"""Idempotent provisioning of every resource the pipeline needs.

Running it twice creates nothing new: each step checks first and reports ``created`` or
``exists``. Works the same on the embedded cloud, LocalStack and AWS.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from riskstream.clients import make_client
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "lease_key"


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    action: str  # "created" | "exists"

    def line(self) -> str:
        return f"{self.action:<8} {self.kind:<16} {self.name}"


def provision(settings: Settings, wait: bool = True) -> list[Resource]:
    """Create the buckets, the Kinesis stream, the checkpoint and online-feature tables and the
    Glue database."""
    s3 = make_client(settings, "s3")
    kinesis = make_client(settings, "kinesis")
    dynamodb = make_client(settings, "dynamodb")
    glue = make_client(settings, "glue")
    done: list[Resource] = []
    for bucket in settings.buckets.values():
        done.append(ensure_bucket(s3, bucket, settings.region))
    done.append(ensure_stream(kinesis, settings.stream_name, settings.shard_count, wait=wait))
    done.append(ensure_checkpoint_table(dynamodb, settings.checkpoint_table, wait=wait))
    done.append(ensure_checkpoint_table(dynamodb, settings.online_table, wait, "account_id"))
    done.append(ensure_glue_database(glue, settings.glue_database, settings))
    for item in done:
        logger.debug(item.line())
    return done


def ensure_bucket(s3: Any, name: str, region: str) -> Resource:
    try:
        s3.head_bucket(Bucket=name)
        return Resource("s3 bucket", name, "exists")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
            return Resource("s3 bucket", name, "exists")
        raise
    return Resource("s3 bucket", name, "created")


def ensure_stream(kinesis: Any, name: str, shards: int, wait: bool = True) -> Resource:
    try:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        have = summary.get("OpenShardCount")
        if have is not None and have != shards:
            logger.warning(
                "stream %s has %s open shards, settings ask for %s; leaving it as it is "
                "(reshard with `aws kinesis update-shard-count` if you mean it)",
                name,
                have,
                shards,
            )
        return Resource("kinesis stream", name, "exists")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    if wait:
        _wait_for(
            lambda: (
                kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                    "StreamStatus"
                ]
                == "ACTIVE"
            ),
            f"Kinesis stream {name} to become ACTIVE",
        )
    return Resource("kinesis stream", f"{name} ({shards} shards)", "created")


def ensure_checkpoint_table(
    dynamodb: Any, name: str, wait: bool = True, key: str = CHECKPOINT_KEY
) -> Resource:
    """A pay-per-request table with one string hash key (checkpoints, online features)."""
    try:
        dynamodb.describe_table(TableName=name)
        return Resource("dynamodb table", name, "exists")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if wait:
        _wait_for(
            lambda: dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE",
            f"DynamoDB table {name} to become ACTIVE",
        )
    return Resource("dynamodb table", name, "created")


def ensure_glue_database(glue: Any, name: str, settings: Settings) -> Resource:
    try:
        glue.get_database(Name=name)
        return Resource("glue database", name, "exists")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
            raise
    glue.create_database(
        DatabaseInput={
            "Name": name,
            "Description": "riskstream curated, feature and score tables",
            "LocationUri": f"s3://{settings.bucket('curated')}/",
        }
    )
    return Resource("glue database", name, "created")


def _wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
