"""The live scorer over the real local cloud and MLflow: events move scores, a restart resumes
exactly, the champion switches on its own, tier changes become risk events, throttling is
retried, and the API answers from the live state."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest

from benchmarks.fixtures import account_events, features_frame, fit_pipeline, register_champion
from infra.kinesis import read_stream_records
from infra.provision import provision
from infra.shards import RetryPolicy
from riskstream import names
from riskstream.background import in_thread
from riskstream.clients import make_client
from riskstream.events import new_event, serialize
from riskstream.settings import Settings
from serving.live import LiveConfig, LiveScorer
from serving.livestate import AccountState
from serving.online import live_key
from tests.throttling import Throttled

pytestmark = pytest.mark.integration

OPENED = dt.date(2025, 1, 10)


@dataclass
class LiveWorld:
    settings: Settings
    version: str


@pytest.fixture(scope="module")
def base(mlflow_settings: Settings) -> LiveWorld:
    """A prefix of its own (stream, tables, registered model) with an XGBoost champion."""
    settings = mlflow_settings.with_overrides(
        prefix=f"lv{uuid.uuid4().hex[:8]}", risk_event_pd_delta=0.5
    )
    provision(settings)
    train = features_frame(400, dt.date(2025, 6, 1), seed=3)
    pipeline = fit_pipeline("xgb", train)
    return LiveWorld(settings, register_champion(settings, pipeline, train, "xgb"))


@pytest.fixture
def world(base: LiveWorld) -> LiveWorld:
    """The module's world with empty streams and tables, and its first champion again."""
    from mlflow import MlflowClient

    settings = base.settings
    kinesis = make_client(settings, "kinesis")
    dynamodb = make_client(settings, "dynamodb")
    for stream in (settings.stream_name, settings.risk_stream_name):
        kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    for table in (settings.checkpoint_table, settings.online_table):
        dynamodb.delete_table(TableName=table)
    provision(settings)
    MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(
        settings.registered_model_name, names.CHAMPION_ALIAS, base.version
    )
    return base


def _register(settings: Settings, seed: int, kind: str) -> str:
    train = features_frame(400, dt.date(2025, 6, 1), seed=seed)
    return register_champion(settings, fit_pipeline(kind, train), train, kind)


def _put(settings: Settings, events: list[dict[str, Any]]) -> None:
    kinesis = make_client(settings, "kinesis")
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        answer = kinesis.put_records(
            StreamName=settings.stream_name,
            Records=[{"Data": serialize(e), "PartitionKey": e["account_id"]} for e in chunk],
        )
        assert answer["FailedRecordCount"] == 0


@contextmanager
def _following(scorer: LiveScorer) -> Iterator[threading.Thread]:
    """The scorer following the stream in a thread of its own for the block; stopped after."""
    with in_thread(lambda: scorer.run(follow=True), scorer.stop, name="live", join_timeout=30) as t:
        yield t


def _portfolio(n: int, months: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [e for i in range(n) for e in account_events(f"L{i:04d}", OPENED, months, rng)]


def _items(settings: Settings, accounts: list[str]) -> dict[str, dict[str, Any]]:
    dynamodb = make_client(settings, "dynamodb")
    out = {}
    for account in accounts:
        item = dynamodb.get_item(
            TableName=settings.online_table, Key={"account_id": {"S": live_key(account)}}
        ).get("Item")
        if item is not None:
            out[account] = {
                "state": orjson.loads(item["state"]["S"]),
                "version": int(item["version"]["N"]),
                "score": orjson.loads(item["score"]["S"]) if "score" in item else None,
            }
    return out


def _drain(settings: Settings, **config: Any) -> dict[str, Any]:
    scorer = LiveScorer(settings, LiveConfig(idle_sleep=0.01, owner="test", **config))
    return scorer.run(follow=False)


def _risk_events(settings: Settings) -> list[dict[str, Any]]:
    records = read_stream_records(make_client(settings, "kinesis"), settings.risk_stream_name)
    return [json.loads(r["Data"]) for _, r in records]


def _expected(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each account's state with every event applied once, in memory."""
    states: dict[str, AccountState] = {}
    for event in events:
        states.setdefault(event["account_id"], AccountState(event["account_id"])).apply(event)
    return {a: s.to_json() for a, s in states.items()}


def _without_marks(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in ("hwm", "last_event_id")}


def test_events_are_scored_and_a_statement_moves_the_score_into_a_risk_event(
    world: LiveWorld,
) -> None:
    events = _portfolio(6)
    _put(world.settings, events)
    status = _drain(world.settings)
    assert (status["events"], status["applied"], status["invalid"]) == (len(events), len(events), 0)
    accounts = [f"L{i:04d}" for i in range(6)]
    before = _items(world.settings, accounts)
    for account in accounts:
        score = before[account]["score"]
        assert score["model_version"] == world.version
        assert 0.0 < score["pd"] < 1.0
        last = max(e["event_time"] for e in events if e["account_id"] == account)
        assert score["as_of"].replace(".000000", "") == last
    # the worst statement there is: the limit owed, eight months late
    target = "L0000"
    statement = new_event(
        "statement",
        target,
        dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC),
        {
            "statement_date": "2025-05-31",
            "balance": 50_000.0,
            "minimum_due": 2500.0,
            "due_date": "2025-06-20",
            "credit_limit": 50_000.0,
            "repayment_status": 8,
        },
        "synthetic",
    )
    _put(world.settings, [statement])
    drained = _drain(world.settings)
    after = _items(world.settings, [target])[target]["score"]
    old = before[target]["score"]
    assert after["pd"] != old["pd"]
    assert after["event_id"] == statement["event_id"]
    risk = [r for r in _risk_events(world.settings) if r["account_id"] == target]
    if old["risk_tier"] != after["risk_tier"]:
        assert len(risk) == 1
        event = risk[0]
        assert "tier" in event["changed"]
        assert event["trigger_event_id"] == statement["event_id"]
        assert (event["old"]["risk_tier"], event["new"]["risk_tier"]) == (
            old["risk_tier"],
            after["risk_tier"],
        )
        assert event["schema_version"] == 1
        # the status keeps it for the dashboard's live panel
        (change,) = [c for c in drained["recent_changes"] if c["account_id"] == target]
        assert (change["old_tier"], change["new_tier"]) == (old["risk_tier"], after["risk_tier"])
    else:  # the model did not move its tier: then no event unless the PD moved past 0.5
        assert all("tier" not in r["changed"] for r in risk)


def test_a_restart_resumes_exactly_and_a_replay_changes_nothing(world: LiveWorld) -> None:
    events = _portfolio(5, months=5, seed=1)
    # duplicates (the same event_id again) and late, out-of-order events
    rng = np.random.default_rng(0)
    duplicated = [events[int(i)] for i in rng.integers(0, len(events), size=20)]
    half = len(events) // 2
    first, second = events[:half], events[half:]
    late = second[::7]
    second = [e for e in second if e not in late]
    _put(world.settings, first + duplicated[:10])
    _drain(world.settings)
    # a new scorer (nothing cached) picks up from the checkpoints
    _put(world.settings, second + duplicated[10:] + late)
    _drain(world.settings)
    accounts = sorted({e["account_id"] for e in events})
    stored = _items(world.settings, accounts)
    expected = _expected(events)
    for account in accounts:
        assert _without_marks(stored[account]["state"]) == _without_marks(expected[account])
    # a crash after the writes but before the checkpoints: the whole stream is read again
    dynamodb = make_client(world.settings, "dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=world.settings.checkpoint_table):
        for item in page["Items"]:
            dynamodb.delete_item(
                TableName=world.settings.checkpoint_table, Key={"lease_key": item["lease_key"]}
            )
    status = _drain(world.settings)
    assert status["applied"] == 0
    assert _items(world.settings, accounts) == stored


def test_the_champion_switches_during_the_stream(world: LiveWorld) -> None:
    scorer = LiveScorer(world.settings, LiveConfig(idle_sleep=0.05, owner="test", champion_ttl=0.3))
    with _following(scorer) as thread:
        events = _portfolio(3, seed=2)
        _put(world.settings, events)
        _wait(lambda: scorer.status.snapshot()["events"] == len(events))
        assert _items(world.settings, ["L0000"])["L0000"]["score"]["model_version"] == world.version
        new_version = _register(world.settings, seed=9, kind="lr")
        _wait(lambda: scorer.status.snapshot()["model"]["version"] == new_version)
        more = _portfolio(1, months=5, seed=2)[-3:]  # the first account's next month
        _put(world.settings, more)
        _wait(lambda: scorer.status.snapshot()["events"] == len(events) + len(more))
        score = _items(world.settings, ["L0000"])["L0000"]["score"]
        assert score["model_version"] == new_version
        switch = scorer.status.snapshot()["model"]["switches"][-1]
        assert (switch["from"], switch["to"]) == (world.version, new_version)
    assert not thread.is_alive()


def test_throttling_is_retried_and_every_event_applied_once(world: LiveWorld) -> None:
    events = _portfolio(4, seed=4)
    _put(world.settings, events)
    kinesis = Throttled(
        make_client(world.settings, "kinesis"),
        "get_records",
        "ProvisionedThroughputExceededException",
        2,
    )
    dynamodb = Throttled(
        make_client(world.settings, "dynamodb"), "batch_write_item", "ThrottlingException", 2
    )

    class Partial:
        """A real client whose first BatchWriteItem writes one item and hands the rest back as
        UnprocessedItems (as DynamoDB does when a partition is throttled)."""

        def __init__(self, client: Any) -> None:
            self._client, self.cut = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def batch_write_item(self, RequestItems: dict[str, Any]) -> Any:
            ((table, requests),) = RequestItems.items()
            if self.cut or len(requests) < 2:
                return self._client.batch_write_item(RequestItems=RequestItems)
            self._client.batch_write_item(RequestItems={table: requests[:1]})
            self.cut = len(requests) - 1
            return {"UnprocessedItems": {table: requests[1:]}}

    config = LiveConfig(
        idle_sleep=0.01, owner="test", retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05)
    )
    partial = Partial(dynamodb)
    scorer = LiveScorer(world.settings, config, clients={"kinesis": kinesis, "dynamodb": partial})
    status = scorer.run(follow=False)
    assert scorer.retrier.throttled == 4
    assert partial.cut > 0  # some items came back unprocessed and were written again
    counts = (status["events"], status["applied"], status["duplicates"])
    assert counts == (len(events), len(events), 0)
    accounts = sorted({e["account_id"] for e in events})
    expected = _expected(events)
    for account, item in _items(world.settings, accounts).items():
        assert _without_marks(item["state"]) == _without_marks(expected[account])


def test_the_api_answers_an_account_from_the_live_state(world: LiveWorld) -> None:
    from fastapi.testclient import TestClient

    from serving import dashboard
    from serving.api import create_app

    scorer = LiveScorer(world.settings, LiveConfig(idle_sleep=0.05, owner="test"))
    with _following(scorer):
        events = _portfolio(2, seed=5)
        _put(world.settings, events)
        _wait(lambda: scorer.status.snapshot()["events"] == len(events))
        scorer._write_marker(running=True)
        with TestClient(create_app(world.settings, ttl=60)) as client:
            answer = client.get("/accounts/L0001/score")
            assert answer.status_code == 200, answer.text
            body = answer.json()
        # the dashboard's account page and live panel read the same state
        board = dashboard.create_app(world.settings, live_status=scorer.status.snapshot)
        with TestClient(board) as client:
            shown = client.get("/api/live/account", params={"id": "L0001"}).json()["live"]
            panel = client.get("/api/live").json()
    last = max((e for e in events if e["account_id"] == "L0001"), key=lambda e: e["event_time"])
    assert body["source"] == "live"
    assert body["as_of"].replace(".000000", "") == last["event_time"]
    assert body["model_version"] == world.version
    assert set(body) >= {"pd", "score", "risk_tier", "decision", "reasons", "obs_date"}
    assert (shown["pd"], shown["as_of"], shown["score"]) == (
        body["pd"],
        body["as_of"],
        body["score"],
    )
    assert panel["running"] and set(panel["lag_ms"]) and panel["champion_version"] == world.version


def _wait(condition: Any, seconds: float = 120.0, log: Any = None) -> None:
    """Until ``condition()`` holds; bounded (a failure says so, not a hang)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    tail = "" if log is None else "\n" + "\n".join(log.read_text().splitlines()[-30:])
    raise AssertionError(f"still not true after {seconds:.0f}s{tail}")


def test_the_managed_service_survives_kill_9_and_resumes_exactly(world: LiveWorld) -> None:
    """`riskstream live up` (the managed service), killed with SIGKILL mid-stream and started
    again: every event applied exactly once, and `live status` says lag and rate."""
    import os
    import signal

    from infra.services import free_port, port_free
    from serving.live_status import live_notes, read_status
    from serving.processes import live_service

    port = free_port()
    settings = world.settings.with_overrides(live_url=f"http://127.0.0.1:{port}")
    service = live_service(settings)
    events = _portfolio(40, months=6, seed=6)
    half = len(events) // 2
    try:
        service.up()
        _put(settings, events[:half])
        _wait(lambda: (read_status(settings) or {}).get("events", 0) > 0, log=service.log_file)
        pid = service.status().pid
        assert pid is not None
        _put(settings, events[half:])
        os.kill(pid, signal.SIGKILL)  # wherever it is: mid-page, mid-write, idle
        # gone, and its port given back by the kernel
        _wait(lambda: service.status().state == "stale" and port_free("127.0.0.1", port))
        service.up()
        accounts = sorted({e["account_id"] for e in events})
        expected = _expected(events)

        def all_applied() -> bool:
            items = _items(settings, accounts)
            return len(items) == len(accounts) and all(
                _without_marks(items[a]["state"]) == _without_marks(expected[a]) for a in accounts
            )

        _wait(all_applied, log=service.log_file)
        notes = live_notes(settings)
        assert any(line.startswith("lag per shard: shardId-") for line in notes), notes
        assert any("events/s" in line for line in notes), notes
    finally:
        service.down()
    assert read_status(settings) is None
