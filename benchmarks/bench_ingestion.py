"""Ingestion: producer throughput against a raw PutRecords loop, landing throughput against a raw
GetRecords drain (same server, same payloads, same run, interleaved rounds), end-to-end
landing latency (put -> object written) at the default buffer settings, and the synthetic
generator's time for 10,000 accounts x 12 months beside JSON-encoding the same events.

moto's PutRecords and GetRecords slow down as a shard grows (each put copies the shard's key
list), so every round of each pair starts from a fresh stream holding the same records.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import Row, cli, local_cloud, write_rows

from infra.provision import ensure_stream, provision
from ingestion.consumer import Consumer, LandingConfig
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
        Row(
            "ingestion",
            f"producer throughput ({len(events):,} synthetic events, validate+serialize+send)",
            best,
            "records/s",
            reference="raw PutRecords loop, pre-serialized, same server and payloads",
            reference_value=best_ref,
            ratio=best / best_ref,
            target=">= 0.9",
            met=best / best_ref >= 0.9,
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
            Row(
                "ingestion",
                f"landing throughput, {label} ({len(events):,}: validate, gzip, S3, checkpoint)",
                best,
                "records/s",
                reference="raw GetRecords drain of the same stream",
                reference_value=best_ref,
                ratio=best / best_ref,
                target=">= 0.9" if key == "live" else ">= 0.8",
                met=best / best_ref >= (0.9 if key == "live" else 0.8),
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
            "landing latency p50 (put -> object written)",
            p50,
            "s",
            target=f"<= {budget:g} s",
            met=p50 <= budget,
            note=note,
            id="ingest.latency.p50.seconds",
        ),
        Row(
            "ingestion",
            "landing latency p95 (put -> object written)",
            p95,
            "s",
            target=f"<= {budget:g} s",
            met=p95 <= budget,
            note=note,
            id="ingest.latency.p95.seconds",
        ),
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
        Row(
            "ingestion",
            f"synthetic generation ({accounts:,} accounts x 12 months, {len(events):,} events)",
            generate,
            "s",
            reference="json.dumps of the same events",
            reference_value=encode,
            ratio=generate / encode,
            target=f"< {target:.0f} s",
            met=generate < target,
            id="ingestion.synthetic_generation",
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
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
