"""Both consumers of the stream through the cloud going away: a kill -9 and restart of the
(durable) local cloud while landing and the live scorer both follow the stream, in one process
as two applications. Neither exits; afterwards every event is landed once and applied once."""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.fixtures import account_events, features_frame, fit_pipeline, register_champion
from infra.services import ManagedService
from ingestion.consumer import Consumer
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from serving.live import LiveConfig, LiveScorer
from serving.livestate import AccountState
from tests.conftest import durable_cloud_on_a_free_port
from tests.ingestion.helpers import FAST_RETRY, follower_config, landed_ids, produce, quarantined
from tests.serving.test_live import _items as live_items

pytestmark = pytest.mark.integration

OPENED = dt.date(2025, 1, 10)


@pytest.fixture
def durable_stack(
    tmp_path: Path, mlflow_settings: Settings
) -> Iterator[tuple[Settings, ManagedService]]:
    """A durable cloud of this test's own on a free port (the test kill -9s it), the session's
    MLflow (its artifacts live in the session's cloud, not this one) and an LR champion."""

    with durable_cloud_on_a_free_port(
        tmp_path / "state",
        f"lo{uuid.uuid4().hex[:8]}",
        MLFLOW_TRACKING_URI=mlflow_settings.mlflow_tracking_uri,
    ) as (settings, service):
        train = features_frame(300, dt.date(2025, 6, 1), seed=5)
        register_champion(settings, fit_pipeline("lr", train), train, "lr")
        yield settings, service


def _portfolio(prefix: str, n: int, months: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [e for i in range(n) for e in account_events(f"{prefix}{i:03d}", OPENED, months, rng)]


def _live_states(settings: Settings, accounts: list[str]) -> dict[str, dict[str, Any]]:
    """Each account's live state without its bookkeeping (high-water marks, last event id)."""
    return {
        account: {k: v for k, v in item["state"].items() if k not in ("hwm", "last_event_id")}
        for account, item in live_items(settings, accounts).items()
    }


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.2)


@pytest.mark.timeout(900)  # a bound on a hang; the deadlines below are bounds too
def test_landing_and_live_both_run_through_a_kill_9_and_restart_of_the_cloud(
    durable_stack: tuple[Settings, ManagedService], caplog: pytest.LogCaptureFixture
) -> None:
    settings, service = durable_stack
    first = _portfolio("P", 12, months=3, seed=1)
    second = _portfolio("Q", 12, months=3, seed=2)
    third = _portfolio("R", 6, months=3, seed=3)  # sent after the restart
    everything = first + second + third
    accounts = sorted({e["account_id"] for e in everything})
    expected: dict[str, AccountState] = {}
    for e in everything:
        expected.setdefault(e["account_id"], AccountState(e["account_id"])).apply(e)
    want = {
        a: {k: v for k, v in s.to_json().items() if k not in ("hwm", "last_event_id")}
        for a, s in expected.items()
    }

    # clients of their own (the helpers' cached ones are shared with other tests' threads)
    def clients(*services: str) -> dict[str, Any]:
        return {s: make_client(settings, s) for s in services}

    landing_clients = clients("kinesis", "s3", "dynamodb")
    flushed = [0]
    lock = threading.Lock()

    def on_flush(shard_id: str, buffer: Any) -> None:
        with lock:
            flushed[0] += buffer.records

    landing = Consumer(
        landing_clients["kinesis"],
        landing_clients["s3"],
        landing_clients["dynamodb"],
        stream_name=settings.stream_name,
        raw_bucket=settings.bucket("raw"),
        quarantine_bucket=settings.bucket("quarantine"),
        checkpoint_table=settings.checkpoint_table,
        rng=random.Random(7),
        owner="landing-follower",
        config=follower_config(buffer_records=20),
        on_flush=on_flush,
    )
    live = LiveScorer(
        settings,
        LiveConfig(idle_sleep=0.05, lease_seconds=5, owner="live-follower", retry=FAST_RETRY),
        clients=clients("kinesis", "dynamodb"),
    )
    out: dict[str, Any] = {}

    def run(name: str, start: Callable[[], Any]) -> None:
        try:
            out[name] = start()
        except BaseException as exc:  # the test fails on it below
            out[f"{name} error"] = exc

    threads = [
        threading.Thread(
            target=run,
            args=("landing", lambda: landing.run(follow=True, max_seconds=800)),
            name="landing-follower",
        ),
        threading.Thread(
            target=run,
            args=("live", lambda: live.run(follow=True, max_seconds=800)),
            name="live-follower",
        ),
    ]
    caplog.set_level(logging.WARNING, logger="infra.shards")
    produce(settings, first)
    for thread in threads:
        thread.start()
    try:
        # both caught up with the first part, then more events and, while they flow, the kill
        _until(lambda: flushed[0] >= len(first), 120, "landing caught up with the first part")
        _until(
            lambda: live.status.snapshot()["applied"] >= len(first),
            120,
            "the live scorer caught up with the first part",
        )
        produce(settings, second)
        pid = service.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(1.5)  # both consumers meet a dead cloud for a while
        assert all(t.is_alive() for t in threads), out
        service.up()  # the same state dir: records, objects, checkpoints and live states survive
        produce(settings, third)
        _until(
            lambda: flushed[0] >= len(everything) and len(landed_ids(settings)) >= len(everything),
            300,
            "landing landed every event",
        )
        _until(lambda: _live_states(settings, accounts) == want, 300, "every live state")
        assert all(t.is_alive() for t in threads), out  # neither exited on its own
    finally:
        landing.stop()
        live.stop()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not [k for k in out if k.endswith("error")], out
    # landing: every event once
    ids = landed_ids(settings)
    assert sorted(ids) == sorted(e["event_id"] for e in everything)
    assert quarantined(settings) == []
    # live: every event applied once, nothing lost
    status = out["live"]
    assert status["applied"] == len(everything)
    assert status["invalid"] == 0
    assert _live_states(settings, accounts) == want
    # both met the outage (the scorer polls every shard at least every 50 ms while idle)
    assert landing.retrier.outage.outages >= 1 and live.retrier.outage.outages >= 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("cloud reachable again" in m for m in messages), messages
    # both applications released their leases on the way out
    table = make_client(settings, "dynamodb").scan(TableName=settings.checkpoint_table)
    rows = [{k: next(iter(v.values())) for k, v in i.items()} for i in table["Items"]]
    assert {r.get("application") for r in rows} >= {
        names.LANDING_APPLICATION,
        live.status.application,
    }
    assert all("owner" not in r for r in rows), rows
