"""Idempotent provisioning of every resource the pipeline needs.

Running it twice creates nothing new: each step checks first and reports ``created`` or
``exists``. Works the same on the embedded cloud, LocalStack and AWS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "lease_key"
_NOT_FOUND = ("ResourceNotFoundException",)


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    action: str  # "created" | "exists"

    def line(self) -> str:
        return f"{self.action:<8} {self.kind:<16} {self.name}"


def provision(settings: Settings, wait: bool = True) -> list[Resource]:
    """Create the buckets, the Kinesis streams (events, risk events), the checkpoint and
    online-feature tables, the Glue database and the queue of pipeline steps."""
    s3 = make_client(settings, "s3")
    kinesis = make_client(settings, "kinesis")
    dynamodb = make_client(settings, "dynamodb")
    glue = make_client(settings, "glue")
    sqs = make_client(settings, "sqs")
    done: list[Resource] = []
    for bucket in settings.buckets.values():
        done.append(ensure_bucket(s3, bucket, settings.region))
    done.append(ensure_stream(kinesis, settings.stream_name, settings.shard_count, wait=wait))
    # the live scorer's risk events (serving.live), provisioned like the events stream
    done.append(ensure_stream(kinesis, settings.risk_stream_name, settings.shard_count, wait=wait))
    done.append(ensure_checkpoint_table(dynamodb, settings.checkpoint_table, wait=wait))
    done.append(ensure_checkpoint_table(dynamodb, settings.online_table, wait, "account_id"))
    done.append(ensure_glue_database(glue, settings.glue_database, settings))
    done.append(ensure_queue(sqs, names.step_queue_name(settings)))
    for item in done:
        logger.debug(item.line())
    return done


def ensure_bucket(s3: Any, name: str, region: str) -> Resource:
    if _describe(s3.head_bucket, ("404", "NoSuchBucket", "NotFound"), Bucket=name) is not None:
        return Resource("s3 bucket", name, "exists")
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if _error_code(exc) == "BucketAlreadyOwnedByYou":
            return Resource("s3 bucket", name, "exists")
        raise
    return Resource("s3 bucket", name, "created")


def ensure_stream(kinesis: Any, name: str, shards: int, wait: bool = True) -> Resource:
    found = _describe(kinesis.describe_stream_summary, _NOT_FOUND, StreamName=name)
    if found is not None:
        have = found["StreamDescriptionSummary"].get("OpenShardCount")
        if have is not None and have != shards:
            logger.warning(
                "stream %s has %s open shards, settings ask for %s; leaving it as it is "
                "(reshard with `aws kinesis update-shard-count` if you mean it)",
                name,
                have,
                shards,
            )
        return Resource("kinesis stream", name, "exists")
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
    if _describe(dynamodb.describe_table, _NOT_FOUND, TableName=name) is not None:
        return Resource("dynamodb table", name, "exists")
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
    if _describe(glue.get_database, ("EntityNotFoundException",), Name=name) is not None:
        return Resource("glue database", name, "exists")
    glue.create_database(
        DatabaseInput={
            "Name": name,
            "Description": "riskstream curated, feature and score tables",
            "LocationUri": names.curated_location(settings) + "/",
        }
    )
    return Resource("glue database", name, "created")


def ensure_queue(sqs: Any, name: str) -> Resource:
    """The queue of pipeline steps (Step Functions sends them, the step worker takes them)."""
    if _describe(sqs.get_queue_url, ("AWS.SimpleQueueService.NonExistentQueue",), QueueName=name):
        return Resource("sqs queue", name, "exists")
    sqs.create_queue(QueueName=name)
    return Resource("sqs queue", name, "created")


def _describe(call: Callable[..., Any], missing: Collection[str], **kwargs: Any) -> Any:
    """``call(**kwargs)``'s answer, or None when it fails with one of the ``missing`` error codes
    (the resource does not exist yet); any other error is raised."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if _error_code(exc) not in missing:
            raise
    return None


def _error_code(exc: ClientError) -> str | None:
    code: str | None = exc.response.get("Error", {}).get("Code")
    return code


def _wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
