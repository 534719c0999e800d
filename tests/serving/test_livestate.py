"""The live state's rules, event by event: duplicates, corrections, order, population, storage."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from benchmarks.fixtures import account_events
from riskstream.events import new_event
from serving.livestate import AccountState, etl_refusal, feature_rows, risk_change
from serving.rawfeatures import build_rows

pytestmark = pytest.mark.unit


def _events(months: int = 5, seed: int = 0) -> list[dict]:
    return account_events("A1", dt.date(2025, 1, 10), months, np.random.default_rng(seed))


def _state(events: list[dict]) -> AccountState:
    state = AccountState("A1")
    for event in events:
        state.apply(event)
    return state


def _statement(day: str, balance: float, hour: int = 23, status: int = 0) -> dict:
    payload = {
        "statement_date": day,
        "balance": balance,
        "minimum_due": 10.0,
        "due_date": day,
        "repayment_status": status,
    }
    moment = dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)
    return new_event("statement", "A1", moment, payload, "synthetic")


def test_a_duplicate_event_id_changes_nothing() -> None:
    events = _events()
    state = _state(events)
    before = state.to_json()
    assert not any(state.apply(e) for e in events)
    assert state.to_json() == before


@pytest.mark.parametrize("seed", range(3))
def test_the_order_of_arrival_does_not_matter(seed: int) -> None:
    events = _events(seed=seed)
    shuffled = list(events)
    np.random.default_rng(seed).shuffle(shuffled)
    a, b = _state(events), _state(shuffled)
    keep = ("opened", "statements", "payments", "defaulted_on", "ids", "as_of", "applied")
    assert {k: a.to_json()[k] for k in keep} == {k: b.to_json()[k] for k in keep}
    assert feature_rows([a], 6) == feature_rows([b], 6)


def test_a_later_statement_of_the_same_month_replaces_the_earlier() -> None:
    state = _state(_events(months=3))
    first = _statement("2025-04-30", 100.0, hour=10)
    correction = _statement("2025-04-30", 250.0, hour=22)
    for order in itertools.permutations([first, correction]):
        fresh = _state(_events(months=3))
        for event in order:
            fresh.apply(event)
        (row,) = feature_rows([fresh], 6)
        assert isinstance(row, dict)
        assert row["bill_amt_m1"] == 250.0
        assert fresh.obs_date() == dt.date(2025, 5, 1)
    assert state.obs_date() == dt.date(2025, 4, 1)


def test_features_equal_the_raw_form_of_the_same_events() -> None:
    state = _state(_events(months=6))
    (live,) = feature_rows([state], 6)
    obs = state.obs_date()
    events = _events(months=6)
    opened = events[0]
    raw = {
        "obs_date": obs,
        "opened_on": dt.date(2025, 1, 10),
        **{k: opened["payload"].get(k) for k in ("credit_limit", "age", "education")},
        "marital_status": opened["payload"]["marital_status"],
        "statements": [
            {
                "statement_date": dt.date.fromisoformat(e["payload"]["statement_date"]),
                **{k: e["payload"].get(k) for k in ("balance", "minimum_due")},
                "repayment_status": e["payload"]["repayment_status"],
                "credit_limit": e["payload"]["credit_limit"],
            }
            for e in events
            if e["event_type"] == "statement"
        ],
        "payments": [
            {"date": dt.date.fromisoformat(e["event_time"][:10]), "amount": e["payload"]["amount"]}
            for e in events
            if e["event_type"] == "payment"
        ],
        "purchases": [
            {"date": dt.date.fromisoformat(e["event_time"][:10]), **e["payload"]}
            for e in events
            if e["event_type"] == "purchase"
        ],
    }
    (expected,) = build_rows([raw])
    assert isinstance(live, dict)
    assert live.keys() == expected.keys()
    for name, value in expected.items():
        assert (
            live[name] == pytest.approx(value, rel=1e-12)
            if isinstance(value, float)
            else (live[name] == value)
        ), name


def test_population_rules() -> None:
    state = AccountState("A1")
    state.apply(_statement("2025-03-31", 10.0))
    assert feature_rows([state], 6) == ["no account_opened event yet"]
    state = _state(_events(months=3))
    outcome = new_event(
        "outcome",
        "A1",
        dt.datetime(2025, 3, 2, tzinfo=dt.UTC),
        {"default_flag": 1, "observed_date": "2025-03-01"},
        "synthetic",
    )
    state.apply(outcome)
    (reason,) = feature_rows([state], 6)
    assert isinstance(reason, str) and reason.startswith("defaulted on 2025-03-01")


def test_the_state_round_trips_and_remembers_positions() -> None:
    state = _state(_events())
    state.mark("shardId-1", "42")
    again = AccountState.from_json("A1", state.to_json())
    assert again.to_json() == state.to_json()
    assert again.seen("shardId-1", "41") and again.seen("shardId-1", "42")
    assert not again.seen("shardId-1", "43") and not again.seen("shardId-2", "1")


def test_risk_changes() -> None:
    old = {"pd": 0.10, "risk_tier": "B", "decision": "approve"}
    assert risk_change(None, old, 0.05) == []
    assert risk_change(old, dict(old, pd=0.12), 0.05) == []
    assert risk_change(old, dict(old, pd=0.30, risk_tier="D"), 0.05) == ["tier", "pd"]
    assert risk_change(old, dict(old, decision="decline"), 0.05) == ["decision"]
    assert risk_change(old, {"pd": None, "reason": "no champion"}, 0.05) == []


def test_what_the_etl_quarantines_is_skipped() -> None:
    bad = _statement("2025-04-30", 1.0)
    bad["payload"]["due_date"] = "2025-04-01"
    assert etl_refusal(bad) is not None
    assert etl_refusal(_statement("2025-04-30", 1.0)) is None


def test_live_status_lines_say_lag_rate_and_the_last_switch() -> None:
    from serving.live_status import status_lines

    status = {
        "shards": {
            "shardId-000000000000": {"lag_ms": 120},
            "shardId-000000000001": {"lag_ms": None},
        },
        "events_per_second": 42.5,
        "events": 1000,
        "applied": 990,
        "duplicates": 10,
        "invalid": 0,
        "risk_events": 3,
        "model": {"version": "2", "switches": [{"from": "1", "to": "2", "at": 0.0}]},
        "last_error": None,
    }
    lines = status_lines(status)
    assert lines[0] == "lag per shard: shardId-000000000000 120 ms, shardId-000000000001 ? ms"
    assert lines[1].startswith("42.5 events/s over the last 10 s; 1000 read, 990 applied")
    assert lines[2:] == ["champion v2", "switched from v1 to v2 at 1970-01-01T00:00:00+00:00"]
    assert status_lines(None) == ["no live scorer answers"]
