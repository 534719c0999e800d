"""Live scorer (issue 23): freshness, throughput against a raw drain, and kill -9 trials.

- ``live.freshness.p99_ms`` / ``live.freshness_10x.p99_ms``: a producer in a separate process
  sends statements at a steady rate (100 events/s, the landing latency bench's rate, and ten
  times that); 100 of them a second (all at 1x, every tenth at 10x) are timed from their
  PutRecords acknowledgement to the first ``GET /accounts/{id}/score`` (the API as a managed
  process) that answers with that event's ``event_id`` (or a later one of the account). The
  live scorer runs as the managed service.
- ``live.throughput.ratio``: the live scorer draining a backlog (apply, features, score, write,
  checkpoint) against a raw GetRecords drain of the same stream, same server.
- ``live.kill_trials``: kill -9 of the live scorer, and of the (durable) cloud, at seeded random
  points while events flow; then every account's live state against the state of applying each
  event once: accounts whose events were lost or applied twice.

``python benchmarks/bench_live.py --producer FILE RATE`` is the producer's process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from common import Row, cli, ratio_row, write_rows
from fixtures import account_events, features_frame, fit_pipeline, register_champion

from infra.cloud import cloud_service
from infra.provision import provision
from infra.services import free_port, port_free
from riskstream.clients import make_client
from riskstream.events import new_event, parse_time, serialize
from riskstream.settings import Settings
from serving.live import LiveConfig, LiveScorer
from serving.livestate import AccountState
from serving.online import live_key
from serving.processes import api_service, live_service
from training.mlflow_process import mlflow_service

OPENED = dt.date(2024, 1, 10)
HISTORY_MONTHS = 4


@contextlib.contextmanager
def stack(durable: bool, prefix: str) -> Iterator[Settings]:
    """A cloud (durable or in memory), MLflow and a registered LR champion, on free ports."""
    with tempfile.TemporaryDirectory() as state:
        settings = Settings.from_mapping(
            {
                "RISKSTREAM_CLOUD_PORT": str(free_port()),
                "RISKSTREAM_STATE_DIR": state,
                "RISKSTREAM_PREFIX": f"{prefix}{uuid.uuid4().hex[:6]}",
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
                "RISKSTREAM_API_URL": f"http://127.0.0.1:{free_port()}",
                "RISKSTREAM_LIVE_URL": f"http://127.0.0.1:{free_port()}",
            }
        )
        cloud = cloud_service(settings, ephemeral=not durable)
        cloud.up()
        mlflow = mlflow_service(settings)
        try:
            provision(settings)
            mlflow.up()
            train = features_frame(600, dt.date(2024, 6, 1), seed=1)
            register_champion(settings, fit_pipeline("lr", train), train, "lr")
            yield settings
        finally:
            for service in (live_service(settings), api_service(settings, workers=1), mlflow):
                service.down()
            cloud.down()


def history(accounts: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        e
        for i in range(accounts)
        for e in account_events(f"B{i:05d}", OPENED, HISTORY_MONTHS, rng, limit=50_000.0)
    ]


def statements(accounts: int, rounds: int, seed: int, after: int = 0) -> list[dict[str, Any]]:
    """``rounds`` new statements per account, accounts in turn, each a month after the
    account's last (``after`` rounds were sent before)."""
    rng = random.Random(seed)
    out = []
    for i in range(accounts * rounds):
        account, k = i % accounts, HISTORY_MONTHS + 1 + after + i // accounts
        month = OPENED.month + k
        year = OPENED.year + (month - 1) // 12
        end = dt.date(year, (month - 1) % 12 + 1, 1) - dt.timedelta(days=1)
        balance = round(rng.uniform(0, 50_000), 2)
        payload = {
            "statement_date": end.isoformat(),
            "balance": balance,
            "minimum_due": round(balance * 0.05, 2),
            "due_date": (end + dt.timedelta(days=20)).isoformat(),
            "credit_limit": 50_000.0,
            "repayment_status": rng.choice([-1, 0, 0, 1, 2]),
        }
        moment = dt.datetime(end.year, end.month, end.day, 23, tzinfo=dt.UTC)
        out.append(new_event("statement", f"B{account:05d}", moment, payload, "synthetic"))
    return out


def say(rows: list[Row]) -> list[Row]:
    """Print the rows as soon as they are measured (the run is long), and return them."""
    for row in rows:
        print(
            f"ROW {row.id}: {row.value} {row.unit} ({row.reference}: {row.reference_value}); "
            f"{row.note}",
            flush=True,
        )
    return rows


def put(kinesis: Any, stream: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 500):
        pending = [
            {"Data": serialize(e), "PartitionKey": e["account_id"]}
            for e in events[start : start + 500]
        ]
        while pending:
            answer = kinesis.put_records(StreamName=stream, Records=pending)
            pending = [
                r for r, a in zip(pending, answer["Records"], strict=True) if "ErrorCode" in a
            ]


# ---- the producer's process ---------------------------------------------------------------------
def producer_main(path: str, rate: float) -> None:
    """Send the events in ``path`` at ``rate`` per second (batches every 0.1 s); print each
    event's id, account and acknowledgement time (CLOCK_MONOTONIC, shared by processes)."""
    settings = Settings.from_env()
    events = json.loads(Path(path).read_text())
    kinesis = make_client(settings, "kinesis")
    per_batch = max(1, round(rate / 10))
    started = time.monotonic()
    for b, start in enumerate(range(0, len(events), per_batch)):
        time.sleep(max(0.0, started + b * per_batch / rate - time.monotonic()))
        chunk = events[start : start + per_batch]
        put(kinesis, settings.stream_name, chunk)
        acked = time.monotonic()
        for e in chunk:
            record = {"id": e["event_id"], "account": e["account_id"], "ack": acked}
            print(json.dumps({**record, "time": e["event_time"]}))
        sys.stdout.flush()


MEASURED_PER_SECOND = 100.0  # events timed per second, whatever the rate sent


def freshness(settings: Settings, events: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """Ack -> readable latency (ms) of every ``rate / MEASURED_PER_SECOND``-th event, polled by
    4 threads over the API.

    Each timed event is polled until it is readable, so the pollers' own capacity (one API
    request per poll) bounds what they can time: at 1,000 events/s they fell behind and timed
    their own backlog (the scorer's lag stayed 0 while the p50 grew to 15 s). Timing 100
    events/s at any rate keeps the measurement the same at 1x and 10x; the untimed events go
    through the same stream, scorer and table, and load them as much.
    """
    import httpx

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(events, handle)
    sent: queue.Queue[dict[str, Any] | None] = queue.Queue()
    child = subprocess.Popen(
        [sys.executable, __file__, "--producer", handle.name, str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **settings.to_env()},
    )

    def reader() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            sent.put(json.loads(line))
        sent.put(None)

    threading.Thread(target=reader, daemon=True).start()
    pollers_n = 4
    pending: list[list[dict[str, Any]]] = [[] for _ in range(pollers_n)]  # one list per poller
    lock = threading.Lock()
    latencies: list[float] = []
    done = threading.Event()
    lost: list[str] = []
    errors = [0]

    def poller(index: int) -> None:
        mine = pending[index]
        with httpx.Client(base_url=settings.api_url, timeout=30) as client:
            while not (done.is_set() and not mine):
                with lock:
                    batch = list(mine)
                if not batch:
                    time.sleep(0.005)
                    continue
                for item in batch:
                    try:
                        body = client.get(f"/accounts/{item['account']}/score").json()
                    except httpx.HTTPError:  # a slow answer on a loaded machine: poll again
                        with lock:
                            errors[0] += 1
                        continue
                    if body.get("event_id") == item["id"] or _later(body.get("as_of"), item):
                        with lock:
                            latencies.append((time.monotonic() - item["ack"]) * 1000)
                            mine.remove(item)
                    elif time.monotonic() - item["ack"] > 30:
                        with lock:
                            lost.append(item["id"])
                            mine.remove(item)

    pollers = [threading.Thread(target=poller, args=(i,), daemon=True) for i in range(pollers_n)]
    for thread in pollers:
        thread.start()
    every = max(1, round(rate / MEASURED_PER_SECOND))
    count = timed = 0
    acks: list[float] = []
    while (item := sent.get()) is not None:
        acks.append(item["ack"])
        if count % every == 0:
            with lock:
                pending[timed % pollers_n].append(item)
            timed += 1
        count += 1
    done.set()
    for thread in pollers:
        thread.join(timeout=120)
    child.wait(timeout=60)
    os.unlink(handle.name)
    values = np.asarray(latencies)
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "n": len(values),
        "sent": count,
        "sent_rate": count / max(1e-9, max(acks) - min(acks)) if acks else 0.0,
        "lost": len(lost),
        "errors": errors[0],
    }


def _later(as_of: str | None, item: dict[str, Any]) -> bool:
    """The score already covers a later event of the account (this one's is in it too)."""
    return as_of is not None and parse_time(as_of) >= parse_time(item["time"])


def raw_drain(settings: Settings) -> float:
    """Records per second of a plain GetRecords loop over every shard from the oldest record."""
    kinesis = make_client(settings, "kinesis")
    total, started = 0, time.perf_counter()
    for shard in kinesis.list_shards(StreamName=settings.stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=settings.stream_name,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            total += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not page["Records"] and not page.get("MillisBehindLatest"):
                break
    return total / (time.perf_counter() - started)


def speed_rows(quick: bool) -> list[Row]:
    accounts = 500 if quick else 2_000
    n = 1_000 if quick else 2_000
    rows: list[Row] = []
    with stack(durable=False, prefix="blive") as settings:
        backlog = history(accounts)
        put(make_client(settings, "kinesis"), settings.stream_name, backlog)
        raw = max(raw_drain(settings) for _ in range(2))
        scorer = LiveScorer(settings, LiveConfig(owner="bench-drain"))
        scorer.refresh_champion()  # the champion loaded before the clock starts
        started = time.perf_counter()
        status = scorer.run(follow=False)
        live = status["events"] / (time.perf_counter() - started)
        rows.append(
            Row(
                "live",
                "live scorer drain (apply, features, score, write, checkpoint) / raw GetRecords "
                "drain of the same stream",
                live / raw,
                "x",
                reference="raw GetRecords loop, same stream and server (records/s)",
                reference_value=round(raw),
                ratio=live / raw,
                target=">= 0.5",
                met=live / raw >= 0.5,
                note=f"{status['events']:,} events of {accounts:,} accounts: live "
                f"{live:,.0f}/s, raw {raw:,.0f}/s",
                id="live.throughput.ratio",
            )
        )
        live_service(settings).up()
        api_service(settings, workers=1).up()
        rounds = max(1, -(-n // accounts))
        # as many events timed at 10x as at 1x: ten times as many sent, in as long
        for label, rate, ident, goal, seed, after, sent in (
            ("", 100.0, "live.freshness.p99_ms", 1000.0, 1, 0, rounds),
            (" at 10x", 1000.0, "live.freshness_10x.p99_ms", 2000.0, 2, rounds, 10 * rounds),
        ):
            events = statements(accounts, sent, seed, after)
            got = freshness(settings, events, rate)
            rows.append(
                ratio_row(
                    "live",
                    f"PutRecords ack -> new score readable from GET /accounts/{{id}}/score, "
                    f"p99{label}",
                    round(got["p99"], 1),
                    "ms",
                    "p50, same run",
                    round(got["p50"], 1),
                    at_most=goal,
                    also=got["lost"] == 0,
                    note=f"{got['n']:,} events timed of {got['sent']:,} sent at {rate:,.0f}/s "
                    f"(achieved {got['sent_rate']:,.0f}/s) from a separate process over "
                    f"{accounts:,} accounts, p50 {got['p50']:.0f} ms; not readable within "
                    f"30 s: {got['lost']}; polls timed out: {got['errors']}; load average "
                    f"{os.getloadavg()[0]:.1f}",
                    id=ident,
                )
            )
    return rows


# ---- kill -9 trials ------------------------------------------------------------------------------
def kill_rows(trials: int, seed: int = 5) -> list[Row]:
    rng = random.Random(seed)
    accounts = 200
    events = history(accounts, seed=3)
    random.Random(seed).shuffle(events)  # out of order across accounts and months
    chunk = -(-len(events) // (trials + 1))
    with stack(durable=True, prefix="blkill") as settings:
        settings = settings.with_overrides(risk_event_pd_delta=0.05)
        cloud = cloud_service(settings)
        live = live_service(settings)
        live.up()
        kinesis = make_client(settings, "kinesis")
        kills = {"live": 0, "cloud": 0}
        for trial in range(trials + 1):
            put(kinesis, settings.stream_name, events[trial * chunk : (trial + 1) * chunk])
            if trial == trials:
                break
            time.sleep(rng.uniform(0.05, 1.5))  # somewhere in the middle of scoring that chunk
            target = "cloud" if trial % 2 else "live"
            service = cloud if target == "cloud" else live
            pid = service.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            kills[target] += 1
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                service.status().state == "stale"
                and port_free(service.spec.host, service.spec.port)
            ):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.1, 1.0))
            service.up()
        expected: dict[str, AccountState] = {}
        for e in events:
            expected.setdefault(e["account_id"], AccountState(e["account_id"])).apply(e)
        dynamodb = make_client(settings, "dynamodb")
        deadline = time.monotonic() + 300
        while True:
            wrong = _wrong_accounts(dynamodb, settings, expected)
            if not wrong or time.monotonic() > deadline:
                break
            time.sleep(1)
        lost = sum(n < 0 for n in wrong.values())
        twice = sum(n > 0 for n in wrong.values())
    total = kills["live"] + kills["cloud"]
    return [
        Row(
            "live",
            f"live state through {total} kill -9s (scorer {kills['live']}, cloud "
            f"{kills['cloud']}): accounts with an event lost or applied twice",
            lost + twice,
            "accounts",
            reference="accounts streamed",
            reference_value=accounts,
            ratio=(lost + twice) / accounts,
            target="0",
            met=lost + twice == 0,
            note=f"{total} trials, {len(events):,} events shuffled across accounts and months; "
            f"lost {lost}, twice {twice}, other differences {len(wrong) - lost - twice}",
            id="live.kill_trials",
        )
    ]


def _wrong_accounts(
    dynamodb: Any, settings: Settings, expected: dict[str, AccountState]
) -> dict[str, int]:
    """Accounts whose stored state differs from applying each event once: the difference in
    events applied (negative: lost; positive: twice; 0: other)."""
    import orjson

    wrong = {}
    for account, state in expected.items():
        item = dynamodb.get_item(
            TableName=settings.online_table, Key={"account_id": {"S": live_key(account)}}
        ).get("Item")
        if item is None:
            wrong[account] = -state.applied
            continue
        stored = orjson.loads(item["state"]["S"])
        mine = {k: v for k, v in state.to_json().items() if k not in ("hwm", "last_event_id")}
        theirs = {k: v for k, v in stored.items() if k not in ("hwm", "last_event_id")}
        if json.dumps(mine, sort_keys=True) != json.dumps(theirs, sort_keys=True):
            wrong[account] = int(stored["applied"]) - state.applied
    return wrong


def parity_rows(accounts: int) -> list[Row]:
    """Share of accounts whose live features and PD equal the batch job's (1e-9)."""
    from fixtures import batch_and_live, parity_pds, parity_stream, same_value

    from etl.spark import build_spark
    from serving.livestate import feature_rows

    with tempfile.TemporaryDirectory() as state:
        settings = Settings.from_mapping({"RISKSTREAM_STATE_DIR": state})
        spark = build_spark(settings, app_name="bench-live-parity")
        try:
            sent = parity_stream(accounts=accounts, months=8)
            world = batch_and_live(spark, sent)
        finally:
            spark.stop()
    batch, states, obs = world["batch"], world["states"], world["obs"]
    ordered = sorted(batch)
    live = feature_rows([states[a] for a in ordered], 6, obs)
    features_equal = {
        a
        for a, row in zip(ordered, live, strict=True)
        if not isinstance(row, str)
        and all(same_value(row.get(c), batch[a][c]) for c in world["columns"] if c != "account_id")
    }
    names, batch_pd, live_pd = parity_pds(world)
    pd_equal = {a for a, b, v in zip(names, batch_pd, live_pd, strict=True) if abs(b - v) <= 1e-9}
    share = len(features_equal & pd_equal) / len(batch)
    extra = sum(
        1
        for a in states
        if a not in batch and not isinstance(feature_rows([states[a]], 6, obs)[0], str)
    )
    return [
        Row(
            "live",
            "accounts whose live features and PD equal the batch job's at the same cut-off (1e-9)",
            share,
            "share",
            reference="accounts the batch features job scores",
            reference_value=len(batch),
            ratio=share,
            target="1.0",
            met=share == 1.0 and extra == 0,
            note=f"{len(sent):,} events ({accounts} accounts, 8 months) with 5% duplicated "
            f"and 3% late; features equal {len(features_equal)}, PD equal {len(pd_equal)}; "
            f"accounts live scores that batch does not: {extra}",
            id="live.parity",
        )
    ]


def main() -> None:
    if sys.argv[1:2] == ["--producer"]:
        producer_main(sys.argv[2], float(sys.argv[3]))
        return
    parity_only = "--parity-only" in sys.argv  # the parity row alone (Spark, no services)
    if parity_only:
        sys.argv.remove("--parity-only")
    args = cli(__doc__ or "")
    rows = (
        [] if parity_only else say(speed_rows(args.quick)) + say(kill_rows(6 if args.quick else 20))
    )
    rows += say(parity_rows(120 if args.quick else 400))
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
