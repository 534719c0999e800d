"""A crash drill for the durable cloud: write like a producer and a landing job, kill -9 the
cloud at a seeded point, restart it, and count the acknowledged writes that did not survive.

Used by tests/infra/test_durable.py (a few trials) and benchmarks/bench_cloud.py (many).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

from infra.cloud import cloud_service
from infra.kinesis import read_stream_records
from infra.services import ManagedService
from riskstream.clients import make_client
from riskstream.settings import Settings


def writer(settings: Settings, acked: list[tuple[str, str]], stop: threading.Event) -> None:
    """Produce and 'land' until the cloud dies: Kinesis batches, S3 objects, a checkpoint row."""
    kinesis = make_client(settings, "kinesis")
    s3 = make_client(settings, "s3")
    dynamodb = make_client(settings, "dynamodb")
    table = settings.checkpoint_table
    batch = 0
    while not stop.is_set():
        try:
            data = [f"b{batch}-{i}".encode() for i in range(50)]
            result = kinesis.put_records(
                StreamName=settings.stream_name,
                Records=[{"Data": d, "PartitionKey": d.decode()} for d in data],
            )
            acked += [("kinesis", d.decode()) for d in data]
            del result
            key = f"landed/{batch}.jsonl"
            s3.put_object(Bucket=settings.bucket("raw"), Key=key, Body=b"\n".join(data))
            acked.append(("s3", key))
            dynamodb.put_item(
                TableName=table,
                Item={"lease_key": {"S": f"shard-{batch % 4}"}, "sequence": {"S": str(batch)}},
            )
            acked.append(("dynamodb", f"shard-{batch % 4}={batch}"))
        except Exception:
            return
        batch += 1


def lost_writes(settings: Settings, acked: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kinesis = make_client(settings, "kinesis")
    s3 = make_client(settings, "s3")
    seen = {r["Data"].decode() for _, r in read_stream_records(kinesis, settings.stream_name)}
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket("raw"))
        for o in page.get("Contents", [])
    }
    checkpoints = {
        item["lease_key"]["S"]: int(item["sequence"]["S"])
        for item in make_client(settings, "dynamodb").scan(TableName=settings.checkpoint_table)[
            "Items"
        ]
    }
    lost = []
    for kind, value in acked:
        if (kind == "kinesis" and value not in seen) or (kind == "s3" and value not in keys):
            lost.append((kind, value))
        elif kind == "dynamodb":
            shard, batch = value.split("=")
            if checkpoints.get(shard, -1) < int(batch):
                lost.append((kind, value))
    return lost


def kill_trial(
    settings: Settings,
    rng: random.Random,
    max_writes: int = 120,
    service: ManagedService | None = None,
) -> tuple[int, int]:
    """Kill -9 the cloud after a seeded number of acknowledged writes; return (acked, lost)."""
    service = service or cloud_service(settings)
    status = service.up()
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    thread = threading.Thread(target=writer, args=(settings, acked, stop), daemon=True)
    target = len(acked) + rng.randint(1, max_writes)
    thread.start()
    deadline = time.monotonic() + 120
    while len(acked) < target and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGKILL)  # mid-request, most likely
    stop.set()
    thread.join(timeout=30)
    time.sleep(0.2)
    service.up()
    lost = lost_writes(settings, acked)
    return len(acked), len(lost)
