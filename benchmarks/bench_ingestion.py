"""Ingestion: producer throughput against a raw PutRecords loop, landing throughput against a raw
GetRecords drain (same server, same payloads, same run, interleaved rounds), end-to-end
landing latency (put -> object written) at the default buffer settings, and the synthetic
generator's time for 10,000 accounts x 12 months beside JSON-encoding the same events, and
landing through kill -9s of a durable cloud (records lost and duplicated / records produced).

moto's PutRecords and GetRecords slow down as a shard grows (each put copies the shard's key
list), so every round of each pair starts from a fresh stream holding the same records.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from common import Row, cli, cloud_service_of, local_cloud, ratio_row, write_rows

from infra.provision import ensure_stream, provision
from infra.services import ManagedService
from infra.shards import RetryPolicy
from ingestion.consumer import Consumer, LandingConfig, LandingReport
from ingestion.ids import event_id
from ingestion.landing import FlushBuffer
from ingestion.producer import Producer
from ingestion.records import batches, prepare
from ingestion.synthetic import SyntheticConfig, simulate
from riskstream.clients import make_client
from riskstream.events import MERCHANT_CATEGORIES, new_event
from riskstream.settings import Settings


def live_events(n: int, accounts: int = 2000) -> list[dict[str, Any]]:
    """Purchases stamped over the last hour, as a live stream would carry them."""
    now = datetime.now(UTC).replace(microsecond=0)
    out = []
    for i in range(n):
        account = f"L{i % accounts:06d}"
        when = now - timedelta(seconds=(n - i) % 3600)
        out.append(
            new_event(
                "purchase",
                account,
                when,
                {"amount": 5.0 + i % 97, "merchant_category": MERCHANT_CATEGORIES[i % 11]},
                source="bench",
                event_id=event_id("bench", account, "purchase", when.isoformat(), i),
            )
        )
    return out


def fresh_stream(settings: Settings, name: str) -> None:
    ensure_stream(make_client(settings, "kinesis"), name, settings.shard_count)


def raw_put(kinesis: Any, stream: str, requests: list[list[dict[str, Any]]]) -> float:
    started = time.perf_counter()
    for entries in requests:
        kinesis.put_records(StreamName=stream, Records=entries)
    return time.perf_counter() - started


def raw_drain(kinesis: Any, stream: str) -> tuple[int, float]:
    started = time.perf_counter()
    n = 0
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            n += len(page["Records"])
            iterator = page["NextShardIterator"]
            if not page["Records"] and not page.get("MillisBehindLatest"):
                break
    return n, time.perf_counter() - started


def consumer(settings: Settings, stream: str, clients: dict[str, Any], **kw: Any) -> Consumer:
    return Consumer(
        clients["kinesis"],
        clients["s3"],
        clients["dynamodb"],
        stream_name=stream,
        raw_bucket=settings.bucket("raw"),
        quarantine_bucket=settings.bucket("quarantine"),
        checkpoint_table=settings.checkpoint_table,
        **kw,
    )


def producer_rows(settings: Settings, clients: dict[str, Any], n: int, rounds: int) -> list[Row]:
    portfolio = simulate(SyntheticConfig(accounts=max(50, n // 70), months=12, seed=1))
    events = list(portfolio.events())[:n]
    records = [r for r in prepare(events, datetime.now(UTC)) if not hasattr(r, "reason")]
    requests = [
        [{"Data": r.data, "PartitionKey": r.partition_key} for r in batch]
        for batch in batches(records)  # type: ignore[arg-type]
    ]
    ours, ref = [], []
    kinesis = clients["kinesis"]
    for i in range(rounds):
        for which in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            stream = f"{settings.prefix}-p{which}{i}"
            fresh_stream(settings, stream)
            if which == "raw":
                ref.append(len(records) / raw_put(kinesis, stream, requests))
            else:
                report = Producer(kinesis, stream).send(events)
                assert report.sent == len(events), report.summary()
                ours.append(report.sent / report.seconds)
            kinesis.delete_stream(StreamName=stream)
    best, best_ref = max(ours), max(ref)
    return [
        ratio_row(
            "ingestion",
            f"producer throughput ({len(events):,} synthetic events, validate+serialize+send)",
            best,
            "records/s",
            "raw PutRecords loop, pre-serialized, same server and payloads",
            best_ref,
            ratio_at_least=0.9,
            note=f"best of {rounds} interleaved rounds, fresh stream each; median pair ratio "
            f"{statistics.median(a / b for a, b in zip(ours, ref, strict=True)):.2f}",
            id="ingest.produce.ratio",
        )
    ]


def landing_rows(settings: Settings, clients: dict[str, Any], n: int, rounds: int) -> list[Row]:
    rows = []
    for label, key, events in (
        ("live events", "live", live_events(n)),
        (
            "12-month synthetic replay",
            "replay",
            list(simulate(SyntheticConfig(accounts=max(50, n // 70), seed=2)).events())[:n],
        ),
    ):
        stream = f"{settings.prefix}-l{len(rows)}"
        fresh_stream(settings, stream)
        Producer(clients["kinesis"], stream).send(events)
        ours, ref = [], []
        for i in range(rounds):
            for which in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
                if which == "raw":
                    got, seconds = raw_drain(clients["kinesis"], stream)
                    ref.append(got / seconds)
                else:
                    table = settings.checkpoint_table
                    ddb = clients["dynamodb"]
                    for item in ddb.scan(TableName=table).get("Items", []):
                        ddb.delete_item(TableName=table, Key={"lease_key": item["lease_key"]})
                    report = consumer(settings, stream, clients, owner=f"bench{i}").run()
                    assert report.landed == len(events), report.summary()
                    ours.append(report.records / report.seconds)
        best, best_ref = max(ours), max(ref)
        rows.append(
            ratio_row(
                "ingestion",
                f"landing throughput, {label} ({len(events):,}: validate, gzip, S3, checkpoint)",
                best,
                "records/s",
                "raw GetRecords drain of the same stream",
                best_ref,
                ratio_at_least=0.9 if key == "live" else 0.8,
                note=f"best of {rounds} interleaved rounds; default buffers; median pair ratio "
                f"{statistics.median(a / b for a, b in zip(ours, ref, strict=True)):.2f}; "
                f"{report.objects} objects, {report.flushes} flushes (by arrival hour)",
                id=f"ingest.land.{key}.ratio",
            )
        )
    return rows


def latency_rows(settings: Settings, clients: dict[str, Any], seconds: float) -> list[Row]:
    stream = f"{settings.prefix}-lat"
    fresh_stream(settings, stream)
    put_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}

    def on_flush(shard_id: str, buffer: FlushBuffer) -> None:
        now = time.perf_counter()
        for lines in buffer.good.values():
            for line in lines:
                seen_at[json.loads(line)["event_id"]] = now

    config = LandingConfig()  # the defaults users get
    follower = consumer(
        settings, stream, clients, owner="latency", config=config, on_flush=on_flush
    )
    thread = threading.Thread(
        target=follower.run, kwargs={"follow": True, "max_seconds": seconds + 15}
    )
    thread.start()
    producer = Producer(clients["kinesis"], stream)
    rate, sent = 100, 0  # events per second, in batches of 10 every 0.1 s
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = live_events(10, accounts=10)
        for e in batch:
            e["event_id"] = event_id("lat", e["account_id"], "purchase", str(sent), sent)
            sent += 1
        mark = time.perf_counter()
        producer.send(batch)
        for e in batch:
            put_at[e["event_id"]] = mark
        time.sleep(max(0.0, 10 / rate - (time.perf_counter() - mark)))
    deadline = time.perf_counter() + config.buffer_seconds + 10
    while len(seen_at) < len(put_at) and time.perf_counter() < deadline:
        time.sleep(0.1)
    follower.stop()
    thread.join()
    lat = sorted(seen_at[k] - put_at[k] for k in put_at if k in seen_at)
    p50 = statistics.median(lat)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    budget = config.buffer_seconds + 1.0
    note = f"{len(lat)}/{len(put_at)} events at {rate}/s; buffer {config.buffer_seconds:g} s"
    return [
        Row(
            "ingestion",
            f"landing latency {name} (put -> object written)",
            seconds,
            "s",
            target=f"<= {budget:g} s",
            met=seconds <= budget,
            note=note,
            id=f"ingest.latency.{name}.seconds",
        )
        for name, seconds in (("p50", p50), ("p95", p95))
    ]


def synthetic_rows(accounts: int) -> list[Row]:
    """Generation time of a 12-month portfolio (was a timed unit test: < 30 s for 10,000)."""
    started = time.perf_counter()
    portfolio = simulate(SyntheticConfig(accounts=accounts, months=12, seed=3))
    events = list(portfolio.events())
    generate = time.perf_counter() - started
    assert len(events) == portfolio.n_events
    started = time.perf_counter()
    for event in events:
        json.dumps(event)
    encode = time.perf_counter() - started
    target = 30.0 * accounts / 10_000
    return [
        ratio_row(
            "ingestion",
            f"synthetic generation ({accounts:,} accounts x 12 months, {len(events):,} events)",
            generate,
            "s",
            "json.dumps of the same events",
            encode,
            at_most=target,
            id="ingestion.synthetic_generation",
        )
    ]


def durable_cloud(prefix: str) -> AbstractContextManager[tuple[Settings, ManagedService]]:
    """A durable cloud (state in a temp dir, as `riskstream cloud up` runs it) on a free port."""
    return cloud_service_of(prefix, ephemeral=False, provisioned=True)


def landed_event_ids(settings: Settings) -> tuple[list[str], int]:
    """Every event id in the raw objects (with repeats), and the records quarantined as
    duplicates (a record read twice by one consumer would be)."""
    s3 = make_client(settings, "s3")
    ids: list[str] = []
    duplicates = 0
    for role, prefix in (("raw", "events/"), ("quarantine", "ingest/")):
        bucket = settings.bucket(role)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                for line in body.splitlines():
                    if role == "raw":
                        ids.append(json.loads(line)["event_id"])
                    elif json.loads(line)["reason"] == "duplicate_event_id":
                        duplicates += 1
    return ids, duplicates


def cloud_restart_rows(n: int, kills: int, seed: int = 23) -> list[Row]:
    """`consume --follow` landing while the cloud is killed -9 at seeded points and restarted:
    records lost and duplicated, beside the records produced."""
    rng = random.Random(seed)
    events = live_events(n)
    size = -(-n // (kills + 1))
    chunks = [events[i : i + size] for i in range(0, n, size)]
    flushed = [0]
    lock = threading.Lock()

    def on_flush(shard_id: str, buffer: FlushBuffer) -> None:
        with lock:
            flushed[0] += buffer.records

    with durable_cloud("bkill") as (settings, service):
        clients = {s: make_client(settings, s) for s in ("kinesis", "s3", "dynamodb")}
        config = LandingConfig(
            buffer_records=100,
            buffer_seconds=0.5,
            idle_sleep=0.05,
            retry=RetryPolicy(base_seconds=0.05, cap_seconds=1.0),
        )
        follower = consumer(
            settings,
            settings.stream_name,
            clients,
            owner="through-restarts",
            config=config,
            on_flush=on_flush,
            rng=random.Random(seed),
        )
        out: dict[str, Any] = {}

        def run() -> None:
            try:
                out["report"] = follower.run(follow=True)
            except BaseException as exc:
                out["error"] = exc

        thread = threading.Thread(target=run, name="landing")
        thread.start()
        producer = Producer(make_client(settings, "kinesis"), settings.stream_name)
        produced, killed, exits, downtime = 0, 0, 0, 0.0
        try:
            for i, chunk in enumerate(chunks):
                report = producer.send(chunk)  # only while the cloud is up: acked = on the stream
                assert report.sent == len(chunk), report.summary()
                produced += report.sent
                if i == len(chunks) - 1:
                    break
                # kill while this chunk is being landed: once a seeded share of it is written
                target = produced - len(chunk) + int(len(chunk) * rng.uniform(0.1, 0.7))
                deadline = time.monotonic() + 120
                while flushed[0] < target and time.monotonic() < deadline:
                    time.sleep(0.005)
                pid = service.status().pid
                assert pid is not None
                killed_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                killed += 1
                time.sleep(rng.uniform(0.5, 3.0))
                exits += not thread.is_alive()
                service.up()  # restores the state: a second or two
                downtime += time.monotonic() - killed_at
            deadline = time.monotonic() + 300
            while flushed[0] < produced and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.1)
            exits += not thread.is_alive()
        finally:
            follower.stop()
            thread.join(timeout=120)
        if "error" in out:
            raise RuntimeError(f"the landing consumer failed: {out['error']!r}")
        landing: LandingReport = out["report"]
        ids, quarantined_twice = landed_event_ids(settings)
    expected = {e["event_id"] for e in events[:produced]}
    counts = Counter(ids)
    lost = len(expected - set(counts))
    duplicated = sum(c - 1 for c in counts.values()) + quarantined_twice
    return [
        Row(
            "ingestion",
            f"landing through {killed} kill -9s and restarts of the cloud: records lost",
            lost,
            "records",
            reference="records produced (acknowledged by PutRecords)",
            reference_value=produced,
            ratio=lost / produced,
            target="0 lost, 0 duplicated",
            met=lost == 0 and duplicated == 0 and exits == 0,
            note=f"{duplicated} duplicated; consumer exits during the run: {exits}; "
            f"{landing.outages} outages seen, {landing.outage_seconds:.1f}s unreachable "
            f"(down {downtime:.1f}s from kill to restarted), {landing.retries} calls "
            f"retried; kills at seeded points mid-landing (seed {seed}); durable cloud, one "
            "--follow consumer",
            id="ingest.consumer.cloud_restart",
        )
    ]


def main() -> None:
    args = cli(__doc__ or "")
    n, rounds, seconds = (4_000, 2, 5.0) if args.quick else (10_000, 4, 10.0)
    with local_cloud("bing") as settings:
        provision(settings)
        clients = {s: make_client(settings, s) for s in ("kinesis", "s3", "dynamodb")}
        rows = producer_rows(settings, clients, n, rounds)
        rows += landing_rows(settings, clients, n, rounds)
        rows += latency_rows(settings, clients, seconds)
    rows += synthetic_rows(2_000 if args.quick else 10_000)
    rows += cloud_restart_rows(2_000 if args.quick else 6_000, kills=2 if args.quick else 4)
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
