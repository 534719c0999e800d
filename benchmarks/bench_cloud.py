"""Local cloud: start time, S3 round trips through our client factory against a plain boto3 client
(the factory must add no overhead), and the durable cloud: what logging every write costs, how long
a restart with a pipeline run's state takes, and kill -9 trials that count lost acknowledged writes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
from common import Row, cli, cloud_service_of, local_cloud, ratio_row, write_rows

from infra.cloud import cloud_service
from infra.crash_drill import kill_trial
from infra.kinesis import read_stream_records
from infra.provision import provision
from infra.services import ManagedService
from riskstream.clients import make_client
from riskstream.settings import Settings


def put_get_rate(s3: object, bucket: str, n: int, payload: bytes) -> float:
    started = time.perf_counter()
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=payload)  # type: ignore[attr-defined]
        s3.get_object(Bucket=bucket, Key=f"k/{i}")["Body"].read()  # type: ignore[attr-defined]
    return n / (time.perf_counter() - started)


def cloud(
    ephemeral: bool, fsync: bool = False, state: Path | None = None
) -> AbstractContextManager[tuple[Settings, ManagedService]]:
    """A provisioned cloud of our launcher on a free port, durable or in memory."""
    return cloud_service_of("bench", ephemeral, fsync, state, provisioned=True)


def s3_put_rate(settings: Settings, n: int, payload: bytes, tag: str) -> float:
    s3 = make_client(settings, "s3")
    bucket = settings.bucket("raw")
    started = time.perf_counter()
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"{tag}/{i}", Body=payload)
    return n / (time.perf_counter() - started)


def kinesis_put_rate(settings: Settings, batches: int, records: list[dict[str, object]]) -> float:
    kinesis = make_client(settings, "kinesis")
    started = time.perf_counter()
    for _ in range(batches):
        kinesis.put_records(StreamName=settings.stream_name, Records=records)
    return batches * len(records) / (time.perf_counter() - started)


def put_overhead(quick: bool) -> list[Row]:
    """Durable / ephemeral throughput, same launcher, same payloads, interleaved rounds."""
    n_objects = 100 if quick else 400
    batches = 10 if quick else 40
    payload = os.urandom(4096)
    records = [
        {"Data": os.urandom(200), "PartitionKey": f"acct-{i}"} for i in range(500)
    ]  # PutRecords at its 500-record maximum, event-sized records
    rates: dict[str, dict[str, list[float]]] = {}
    with (
        cloud(ephemeral=True) as (memory, _),
        cloud(ephemeral=False) as (durable, _),
        cloud(ephemeral=False, fsync=True) as (synced, _),
    ):
        clouds = {"ephemeral": memory, "durable": durable, "fsync": synced}
        for settings in clouds.values():  # warm every connection
            s3_put_rate(settings, 20, payload, "warm")
            kinesis_put_rate(settings, 2, records)
        for round_ in range(3):
            for name, settings in clouds.items():
                rates.setdefault(name, {}).setdefault("s3", []).append(
                    s3_put_rate(settings, n_objects, payload, f"r{round_}")
                )
                rates[name].setdefault("kinesis", []).append(
                    kinesis_put_rate(settings, batches, records)
                )
    best = {name: {k: max(v) for k, v in by.items()} for name, by in rates.items()}
    s3_ratio = best["durable"]["s3"] / best["ephemeral"]["s3"]
    kinesis_ratio = best["durable"]["kinesis"] / best["ephemeral"]["kinesis"]
    fsync_s3 = best["fsync"]["s3"] / best["ephemeral"]["s3"]
    fsync_kinesis = best["fsync"]["kinesis"] / best["ephemeral"]["kinesis"]
    worst = min(s3_ratio, kinesis_ratio)
    return [
        ratio_row(
            "durable cloud",
            "write throughput, durable / in memory (worse of S3 PutObject 4 KB and Kinesis "
            "PutRecords 500 x 200 B)",
            worst,
            "ratio",
            "same launcher with --ephemeral, same payloads",
            1.0,
            ratio_at_least=0.7,
            note=(
                f"S3 {best['durable']['s3']:.0f} vs {best['ephemeral']['s3']:.0f} puts/s "
                f"({s3_ratio:.2f}); Kinesis {best['durable']['kinesis']:.0f} vs "
                f"{best['ephemeral']['kinesis']:.0f} records/s ({kinesis_ratio:.2f})"
            ),
            id="cloud.durable.put_overhead",
        ),
        ratio_row(
            "durable cloud",
            "write throughput with --fsync, durable / in memory (worse of S3 and Kinesis)",
            min(fsync_s3, fsync_kinesis),
            "ratio",
            "same launcher with --ephemeral, same payloads",
            1.0,
            note=(
                f"S3 {best['fsync']['s3']:.0f} puts/s ({fsync_s3:.2f}); Kinesis "
                f"{best['fsync']['kinesis']:.0f} records/s ({fsync_kinesis:.2f})"
            ),
            id="cloud.durable.put_overhead_fsync",
        ),
    ]


def _answer(settings: Settings, last_seqs: dict[str, str]) -> tuple[int, int, list[str]]:
    """(raw objects, checkpoint rows, each shard's last record) as the cloud answers them now.

    A shard keeps its records in sequence order, so its last acknowledged record being there
    (with the same sequence number) stands for the records before it.
    """
    s3 = make_client(settings, "s3")
    objects = sum(
        len(page.get("Contents", []))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket("raw"))
    )
    rows = len(make_client(settings, "dynamodb").scan(TableName=settings.checkpoint_table)["Items"])
    kinesis = make_client(settings, "kinesis")
    found = []
    for shard_id, seq in sorted(last_seqs.items()):
        page = _records_at(kinesis, settings.stream_name, shard_id, seq, limit=2)
        found += [r["SequenceNumber"] for r in page]
    return objects, rows, found


def _last_sequence_numbers(settings: Settings) -> dict[str, str]:
    """Each shard's last sequence number (read once, before the restarts)."""
    kinesis = make_client(settings, "kinesis")
    last = {}
    for shard_id, record in read_stream_records(kinesis, settings.stream_name):
        last[shard_id] = record["SequenceNumber"]
    return last


def _restore_line(log: Path) -> str:
    lines = [x for x in log.read_text(errors="replace").splitlines() if "restored the local" in x]
    if not lines:
        return "?"
    # "<state dir>: snapshot ..., N requests replayed ...": keep the figures, not the machine path
    return lines[-1].split("restored the local cloud from ", 1)[-1].split(": ", 1)[-1]


def restart_seconds(quick: bool) -> list[Row]:
    """Produce and land the default portfolio, then restart: after kill -9, after a clean stop."""
    from ingestion.tasks import DEFAULT_ACCOUNTS, land, produce

    accounts = 200 if quick else DEFAULT_ACCOUNTS
    results: dict[str, float] = {}
    restored: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, cloud(False, state=Path(tmp)) as (settings, service):
        produced = produce(settings, "synthetic", accounts=accounts)
        land(settings)
        last_seqs = _last_sequence_numbers(settings)
        expected = _answer(settings, last_seqs)
        assert sorted(expected[2]) == sorted(last_seqs.values())
        state_bytes = sum(f.stat().st_size for f in (Path(tmp) / "cloud").iterdir())
        for how in ("kill -9", "cloud down"):
            if how == "kill -9":
                pid = service.status().pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
            else:
                service.down()
            started = time.perf_counter()
            service.up()
            got = _answer(settings, last_seqs)
            results[how] = time.perf_counter() - started
            assert got == expected, f"after {how}: {got} != {expected}"
            restored[how] = _restore_line(service.log_file)
        state_after = sum(f.stat().st_size for f in (Path(tmp) / "cloud").iterdir())
    with cloud(ephemeral=True) as (_, empty):
        empty.down()
        started = time.perf_counter()
        empty.up()
        empty_seconds = time.perf_counter() - started
    worst = max(results.values())
    return [
        ratio_row(
            "durable cloud",
            f"restart with one default run's state ({accounts} accounts: "
            f"{produced.get('sent', '?')} events, {expected[0]} raw objects) until it answers "
            "with all of it (worse of kill -9 and a clean stop)",
            worst,
            "s",
            "start of an empty in-memory cloud, same run",
            empty_seconds,
            at_most=10,
            note=(
                f"after kill -9 {results['kill -9']:.1f} s ({restored['kill -9']}); after cloud "
                f"down {results['cloud down']:.1f} s ({restored['cloud down']}); state on disk "
                f"{state_bytes / 1e6:.0f} MB, {state_after / 1e6:.0f} MB after the snapshot"
            ),
            id="cloud.durable.restart_seconds",
        )
    ]


def kill_trials(quick: bool) -> list[Row]:
    """kill -9 at seeded points while writing; restart; count acknowledged writes lost."""
    trials = 5 if quick else 24
    rng = random.Random(2026)
    acked_total = lost_total = 0
    with cloud(ephemeral=False) as (settings, _):
        for _ in range(trials):
            acked, lost = kill_trial(settings, rng, max_writes=300)
            acked_total += acked
            lost_total += lost
    return [
        Row(
            "durable cloud",
            f"kill -9 trials while producing and landing: acknowledged writes lost "
            f"({trials} trials, {acked_total} acknowledged writes)",
            lost_total,
            "writes",
            target=">= 20 trials, 0 lost",
            met=trials >= 20 and lost_total == 0,
            note=f"{trials} trials, seed 2026",
            id="cloud.durable.kill_trials",
        )
    ]


def _rss_mb(service: ManagedService) -> float:
    import psutil

    pid = service.status().pid
    assert pid is not None
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def _fill_s3(settings: Settings, megabytes: int, object_kb: int = 256) -> None:
    """``megabytes`` of distinct random S3 bodies, ``object_kb`` each (a landed object's size)."""
    s3 = make_client(settings, "s3")
    for i in range(megabytes * 1024 // object_kb):
        s3.put_object(
            Bucket=settings.bucket("raw"), Key=f"fill/{i}", Body=os.urandom(object_kb * 1024)
        )


def memory(quick: bool) -> list[Row]:
    """The cloud's resident memory after N MB of S3 objects: durable (bodies on disk, infra/
    s3_bodies.py) beside moto's own in-memory bodies (the ephemeral cloud), same launcher, same
    writes; and the durable cloud's snapshot and restart after them."""
    megabytes = 48 if quick else 256
    measured: dict[str, float] = {}
    with cloud(ephemeral=True) as (settings, service):
        before = _rss_mb(service)
        _fill_s3(settings, megabytes)
        measured["memory"] = _rss_mb(service) - before
    with tempfile.TemporaryDirectory() as tmp:
        with cloud(ephemeral=False, state=Path(tmp)) as (settings, service):
            before = _rss_mb(service)
            _fill_s3(settings, megabytes)
            measured["disk"] = _rss_mb(service) - before
        # the clean stop above wrote the snapshot; a restart loads it
        snapshot = Path(tmp) / "cloud" / "snapshot.pkl"
        snapshot_mb = snapshot.stat().st_size / 2**20
        service = cloud_service(settings)
        started = time.perf_counter()
        service.up()
        restart = time.perf_counter() - started
        service.down()
    return [
        ratio_row(
            "foundation",
            f"local cloud memory growth after {megabytes} MB of S3 objects (256 KB each), "
            "bodies on disk (durable)",
            measured["disk"],
            "MB",
            "moto's in-memory bodies (ephemeral cloud), same writes",
            measured["memory"],
            ratio_at_most=0.25,
            note=f"snapshot after them {snapshot_mb:.1f} MB; restart {restart:.1f} s",
            id="cloud.memory",
        )
    ]


def _event(i: int) -> bytes:
    """A card event as the producer sends it, about 270 bytes of JSON."""
    return json.dumps(
        {
            "event_id": f"{i:08d}-5f3c-4b8e-9a1d-{i * 7919 % 10**12:012d}",
            "event_type": "card_transaction",
            "account_id": f"acct-{i % 200_000:07d}",
            "event_time": "2026-03-14T09:26:53.589793Z",
            "amount": round(12.5 + i % 977 * 1.37, 2),
            "currency": "USD",
            "merchant_category": "5411",
            "channel": "card_present",
            "balance": round(1000 + i % 5000 * 0.91, 2),
            "credit_limit": 5000.0,
        }
    ).encode()


def _fill_kinesis(settings: Settings, n: int, first: int = 0) -> tuple[dict[str, str], int]:
    """Records ``first`` to ``n - 1``, event-sized, into the stream, 500 a PutRecords: each
    shard's last sequence number, and the bytes sent."""
    kinesis = make_client(settings, "kinesis")
    last: dict[str, str] = {}
    sent = 0
    for start in range(first, n, 500):
        records = [
            {"Data": _event(i), "PartitionKey": f"acct-{i % 200_000:07d}"}
            for i in range(start, min(n, start + 500))
        ]
        sent += sum(len(r["Data"]) for r in records)
        answer = kinesis.put_records(StreamName=settings.stream_name, Records=records)
        assert answer["FailedRecordCount"] == 0
        for result in answer["Records"]:
            last[result["ShardId"]] = result["SequenceNumber"]
    return last, sent


def _records_at(kinesis: Any, stream: str, shard_id: str, seq: str, limit: int) -> list[Any]:
    """At most ``limit`` records of a shard from sequence number ``seq`` on."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=seq,
    )["ShardIterator"]
    return list(kinesis.get_records(ShardIterator=iterator, Limit=limit)["Records"])


def _holds(settings: Settings, last: dict[str, str]) -> bool:
    """Each shard answers with its newest record (after a restart)."""
    kinesis = make_client(settings, "kinesis")
    for shard_id, seq in last.items():
        records = _records_at(kinesis, settings.stream_name, shard_id, seq, limit=1)
        if not records or records[0]["SequenceNumber"] != seq:
            return False
    return True


def memory_kinesis(quick: bool) -> list[Row]:
    """The cloud's resident memory per retained Kinesis record: durable (records in segment
    files, infra/kinesis_records.py) beside moto's Record objects (the ephemeral cloud), same
    launcher, same writes; and the durable cloud's snapshot and restart holding them."""
    n = 30_000 if quick else 300_000
    warm = n // 20  # the first requests load code and caches in both clouds: not records
    growth: dict[str, float] = {}
    with cloud(ephemeral=True) as (settings, service):
        _fill_kinesis(settings, warm)
        before = _rss_mb(service)
        _fill_kinesis(settings, n, warm)
        growth["memory"] = _rss_mb(service) - before
    with tempfile.TemporaryDirectory() as tmp:
        with cloud(ephemeral=False, state=Path(tmp)) as (settings, service):
            last, sent = _fill_kinesis(settings, warm)
            before = _rss_mb(service)
            later, more = _fill_kinesis(settings, n, warm)
            growth["disk"] = _rss_mb(service) - before
            last, sent = {**last, **later}, sent + more
        # the clean stop above wrote the snapshot; a restart loads it
        folder = Path(tmp) / "cloud"
        snapshot_mb = (folder / "snapshot.pkl").stat().st_size / 2**20
        segments_mb = sum(p.stat().st_size for p in folder.glob("kinesis/*/*.seg")) / 2**20
        service = cloud_service(settings)
        started = time.perf_counter()
        service.up()
        held = _holds(settings, last)
        restart = time.perf_counter() - started
        restored = _restore_line(service.log_file)
        service.down()
    assert held, "the restarted cloud lost the newest record"
    per_record = {k: v * 2**20 / (n - warm) for k, v in growth.items()}
    return [
        ratio_row(
            "foundation",
            f"local cloud memory growth per retained Kinesis record ({n:,} records of "
            f"{sent / n:.0f} B JSON on average), records in segment files (durable)",
            per_record["disk"],
            "B/record",
            "moto's Record objects (ephemeral cloud), same writes",
            per_record["memory"],
            ratio_at_most=0.1,
            note=(
                f"growth {growth['disk']:.1f} MB vs {growth['memory']:.1f} MB over the last "
                f"{n - warm:,} records (the first {warm:,} warm both up); snapshot after "
                f"them {snapshot_mb:.1f} MB, segment files {segments_mb:.0f} MB; restart "
                f"{restart:.1f} s until it answers with each shard's newest record ({restored})"
            ),
            id="cloud.memory.kinesis",
        )
    ]


SECTIONS = ("client", "put_overhead", "restart_seconds", "kill_trials", "memory", "kinesis")


def main() -> None:
    """``RISKSTREAM_BENCH_SECTIONS=kinesis,memory`` runs only those sections (of SECTIONS);
    with ``run_all.py --only cloud --merge`` only their rows are replaced."""
    args = cli(__doc__ or "")
    chosen = os.environ.get("RISKSTREAM_BENCH_SECTIONS", ",".join(SECTIONS)).split(",")
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}: choose among {', '.join(SECTIONS)}")
    rows = client_rows(args.quick) if "client" in chosen else []
    if "put_overhead" in chosen:
        rows += put_overhead(args.quick)
    if "restart_seconds" in chosen:
        rows += restart_seconds(args.quick)
    if "kill_trials" in chosen:
        rows += kill_trials(args.quick)
    if "memory" in chosen:
        rows += memory(args.quick)
    if "kinesis" in chosen:
        rows += memory_kinesis(args.quick)
    write_rows(args.out, rows)


def client_rows(quick: bool) -> list[Row]:
    """Start, provision, and S3 round trips through make_client against a plain boto3 client."""
    n = 100 if quick else 500
    started = time.perf_counter()
    with local_cloud() as settings:
        up_seconds = time.perf_counter() - started
        mark = time.perf_counter()
        provision(settings)
        provision_seconds = time.perf_counter() - mark
        bucket = settings.bucket("raw")
        payload = b"x" * 4096
        ours = make_client(settings, "s3")
        plain = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        put_get_rate(ours, bucket, 20, payload)  # warm both connections
        put_get_rate(plain, bucket, 20, payload)
        rates_ours, rates_plain = [], []
        for _ in range(3):  # interleave to share the machine's noise fairly
            rates_ours.append(put_get_rate(ours, bucket, n, payload))
            rates_plain.append(put_get_rate(plain, bucket, n, payload))
        best_ours, best_plain = max(rates_ours), max(rates_plain)
    return [
        Row(
            "foundation",
            "local cloud start (cloud up until it answers)",
            up_seconds,
            "s",
            target="< 10 s",
            met=up_seconds < 10,
            id="cloud.start.seconds",
        ),
        Row(
            "foundation",
            "provision all resources (first run)",
            provision_seconds,
            "s",
            id="cloud.provision.seconds",
        ),
        ratio_row(
            "foundation",
            "S3 put+get round trips via make_client",
            best_ours,
            "pairs/s",
            "plain boto3 client, same server",
            best_plain,
            ratio_at_least=0.9,
            id="cloud.client.put_get_ratio",
        ),
    ]


if __name__ == "__main__":
    main()
