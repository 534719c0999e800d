from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion import csv_replay, synthetic, taiwan
from ingestion.csv_replay import MappingError, RowError, parse_mapping
from ingestion.synthetic import SyntheticConfig, simulate
from riskstream.events import validate

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def portfolio():
    return simulate(SyntheticConfig(accounts=400, months=8, seed=11))


@pytest.fixture(scope="module")
def portfolio_events(portfolio) -> list[dict]:
    return list(portfolio.events())


# ---- synthetic --------------------------------------------------------------------------------
def test_synthetic_is_deterministic_per_seed(portfolio_events: list[dict]) -> None:
    again = list(simulate(SyntheticConfig(accounts=400, months=8, seed=11)).events())
    assert again == portfolio_events
    other = list(simulate(SyntheticConfig(accounts=400, months=8, seed=12)).events())
    assert [e["event_id"] for e in other] != [e["event_id"] for e in portfolio_events]


def test_synthetic_events_are_valid_unique_and_in_time_order(portfolio_events: list[dict]) -> None:
    for event in portfolio_events:
        validate(event, now=NOW)
    ids = [e["event_id"] for e in portfolio_events]
    assert len(set(ids)) == len(ids)
    per_account: dict[str, list[str]] = defaultdict(list)
    for event in portfolio_events:
        per_account[event["account_id"]].append(event["event_time"])
    assert len(per_account) == 400
    for times in per_account.values():
        assert times == sorted(times)


def test_synthetic_has_the_expected_shape(portfolio, portfolio_events: list[dict]) -> None:
    kinds = Counter(e["event_type"] for e in portfolio_events)
    assert kinds["account_opened"] == 400
    # one statement and one outcome a month for every account until it defaults
    # (the oracle's rows: the accounts active at the start of months 2..9)
    last = portfolio.oracle["obs_date"] == portfolio.oracle["obs_date"].max()
    assert kinds["statement"] == kinds["outcome"] == 400 + len(portfolio.oracle) - last.sum()
    assert kinds["purchase"] > 400 * 8 * 2
    assert 0 < kinds["payment"] <= 400 * 7
    assert portfolio.n_events == len(portfolio_events)
    categories = {
        e["payload"]["merchant_category"] for e in portfolio_events if e["event_type"] == "purchase"
    }
    assert len(categories) >= 8
    statuses = Counter(
        e["payload"]["repayment_status"] for e in portfolio_events if e["event_type"] == "statement"
    )
    assert {-1, 0, 1, 2} <= set(statuses)  # paid in full, revolving, and delinquency building up
    # an outcome observed at the end of every activity month (2024-01 .. 2024-08)
    outcomes = [e for e in portfolio_events if e["event_type"] == "outcome"]
    assert sorted({e["payload"]["observed_date"] for e in outcomes}) == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
        "2024-05-31",
        "2024-06-30",
        "2024-07-31",
        "2024-08-31",
    ]


def test_oracle_is_beside_the_stream_and_carries_signal(
    portfolio, portfolio_events: list[dict]
) -> None:
    oracle = portfolio.oracle
    assert list(oracle.columns[:3]) == ["account_id", "obs_date", "true_pd"]
    # a row per account and observation date (2024-02-01 .. 2024-09-01) until it defaults
    assert sorted({d.isoformat() for d in oracle["obs_date"]})[::7] == ["2024-02-01", "2024-09-01"]
    assert oracle["true_pd"].between(0, 1).all()
    assert not any("true_pd" in json.dumps(e) for e in portfolio_events)
    defaulted = {
        e["account_id"]: e["payload"]["observed_date"]
        for e in portfolio_events
        if e["event_type"] == "outcome" and e["payload"]["default_flag"] == 1
    }
    for row in oracle.sample(200, random_state=1).itertuples():
        when = defaulted.get(row.account_id)
        window_end = row.observed_date.isoformat()
        expected = when is not None and row.obs_date.isoformat() <= when <= window_end
        assert row.default_flag == int(expected), row
        assert when is None or when >= row.obs_date.isoformat()  # no row after a default
    # defaulters had a higher true PD on average than non-defaulters
    by_flag = oracle.groupby("default_flag")["true_pd"].mean()
    assert by_flag[1] > by_flag[0] * 1.5
    assert 0.01 < oracle["true_pd"].mean() < 0.4


def test_synthetic_delinquency_builds_month_by_month(portfolio_events: list[dict]) -> None:
    statuses: dict[str, list[int]] = defaultdict(list)
    for e in portfolio_events:
        if e["event_type"] == "statement":
            statuses[e["account_id"]].append(e["payload"]["repayment_status"])
    for history in statuses.values():
        for before, after in itertools.pairwise(history):
            if after > 0:  # k cycles late follows k-1 late (or a cure then 1)
                assert after == 1 or after == min(before + 1, 9) or before == after == 9


def test_synthetic_10k_by_12_generates_every_event_it_counts() -> None:
    # Its speed (< 30 s) is the benchmark row ingestion.synthetic_generation, not a timed test.
    p = simulate(SyntheticConfig(accounts=10_000, months=12, seed=3))
    n = sum(1 for _ in p.events())
    assert n == p.n_events > 500_000


def test_synthetic_streams_a_month_at_a_time_in_slices_without_the_portfolio(
    portfolio_events: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slice boundary inside a run of same-time events must not restart their counter, and the
    # stream must not need the portfolio (the producer lets the oracle go while it streams).
    monkeypatch.setattr(synthetic, "_SLICE", 7)
    portfolio = simulate(SyntheticConfig(accounts=400, months=8, seed=11))
    events = portfolio.events()
    portfolio.oracle = None
    portfolio.profile = None
    assert list(events) == portfolio_events
    assert not hasattr(portfolio, "blocks")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accounts": 0}, "accounts=0"),
        ({"months": 1}, "months=1"),
        ({"start": datetime(2024, 1, 5).date()}, "first day"),
    ],
)
def test_synthetic_config_errors_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**kwargs)


# ---- taiwan -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def taiwan_events() -> list[dict]:
    return list(taiwan.events())


def test_taiwan_every_client_replayed(taiwan_events: list[dict]) -> None:
    kinds = Counter(e["event_type"] for e in taiwan_events)
    assert kinds == {
        "account_opened": 30_000,
        "statement": 180_000,
        "payment": 180_000,
        "outcome": 30_000,
    }
    defaults = sum(
        e["payload"]["default_flag"] for e in taiwan_events if e["event_type"] == "outcome"
    )
    assert defaults == 6_636
    ids = [e["event_id"] for e in taiwan_events]
    assert len(set(ids)) == len(ids)


def test_taiwan_first_client_matches_the_file(taiwan_events: list[dict]) -> None:
    # ID 1: 20000 limit, female, university, married, 24; PAY_0..6 = 2,2,-1,-1,-2,-2; default 1
    first = [e for e in taiwan_events[:14]]
    assert all(e["account_id"] == "TW00001" for e in first)
    opened = first[0]
    assert opened["payload"] == {
        "credit_limit": 20000.0,
        "age": 24,
        "sex": "female",
        "education": "university",
        "marital_status": "married",
        "attributes": {"client_id": 1, "sex_code": 2, "education_code": 2, "marriage_code": 1},
    }
    statements = [e["payload"] for e in first if e["event_type"] == "statement"]
    assert [s["statement_date"] for s in statements] == [
        "2005-04-30",
        "2005-05-31",
        "2005-06-30",
        "2005-07-31",
        "2005-08-31",
        "2005-09-30",
    ]
    assert [s["repayment_status"] for s in statements] == [-2, -2, -1, -1, 2, 2]
    assert [s["balance"] for s in statements] == [0, 0, 0, 689, 3102, 3913]
    payments = [e["payload"]["amount"] for e in first if e["event_type"] == "payment"]
    assert payments == [0, 0, 0, 0, 689, 0]
    assert first[-1]["payload"] == {"default_flag": 1, "observed_date": "2005-10-31"}
    times = [e["event_time"] for e in first]
    assert times == sorted(times)


def test_taiwan_undocumented_codes_become_unknown_and_keep_the_code(
    taiwan_events: list[dict],
) -> None:
    opened = [e["payload"] for e in taiwan_events if e["event_type"] == "account_opened"]
    unknown_edu = [p for p in opened if p["education"] == "unknown"]
    assert unknown_edu and {p["attributes"]["education_code"] for p in unknown_edu} <= {0, 5, 6}
    unknown_mar = [p for p in opened if p["marital_status"] == "unknown"]
    assert unknown_mar and {p["attributes"]["marriage_code"] for p in unknown_mar} == {0}


def test_taiwan_replay_ids_are_stable_and_valid(taiwan_events: list[dict]) -> None:
    frame = taiwan.load().head(50)
    again = list(taiwan.frame_events(frame))
    assert again == taiwan_events[: len(again)]
    for event in taiwan_events[::97]:
        validate(event, now=NOW)


def test_taiwan_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(taiwan.TaiwanDataError, match="does not exist"):
        taiwan.load(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("ID,LIMIT_BAL\n1,2\n")
    with pytest.raises(taiwan.TaiwanDataError, match="lacks columns"):
        taiwan.load(tmp_path / "x.csv")


# ---- csv replay -------------------------------------------------------------------------------
MAPPING = {
    "entity_id": "cust",
    "event_time": "as_of",
    "credit_limit": "limit",
    "label": "bad",
    "age": "age",
    "attributes": ["region", "score"],
}


def test_csv_rows_become_opened_and_outcome_events(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "cust": ["c1", "c2", None, "c4", "c5"],
            "as_of": [
                "2024-03-01",
                "2024-03-02T10:00:00+02:00",
                "2024-03-03",
                "soon",
                "2024-03-05",
            ],
            "limit": [1000, 2500.5, 10, 10, 10],
            "bad": [1, None, 0, 0, "maybe"],
            "age": [30, 41, np.nan, 22, 50],
            "region": ["n", "s", "e", "w", "x"],
            "score": [0.5, 0.7, 0.1, 0.2, 0.3],
        }
    )
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    mapping = parse_mapping(MAPPING)
    out = list(csv_replay.frame_events(csv_replay.load_frame(path), mapping))
    events = [e for e in out if isinstance(e, dict)]
    errors = [e for e in out if isinstance(e, RowError)]
    assert [(e["account_id"], e["event_type"]) for e in events] == [
        ("c1", "account_opened"),
        ("c1", "outcome"),
        ("c2", "account_opened"),
    ]
    assert events[0]["payload"] == {
        "credit_limit": 1000.0,
        "age": 30,
        "attributes": {"region": "n", "score": 0.5},
    }
    assert events[1]["payload"] == {"default_flag": 1, "observed_date": "2024-03-01"}
    assert events[2]["event_time"] == "2024-03-02T08:00:00Z"
    assert [(e.row, e.reason) for e in errors] == [
        (3, "missing_entity_id"),
        (4, "bad_time"),
        (5, "bad_label"),
    ]
    for event in events:
        validate(event, now=NOW)
    # deterministic ids: a replay sends the same ids
    frame.astype({"bad": "string"}).to_parquet(tmp_path / "in.parquet")  # Parquet too
    again = [
        e
        for e in csv_replay.frame_events(csv_replay.load_frame(tmp_path / "in.parquet"), mapping)
        if isinstance(e, dict)
    ]
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"event_time": "t", "credit_limit": "l"}, "entity_id"),
        ({**MAPPING, "colour": "x"}, "unknown mapping keys"),
        ({**MAPPING, "attributes": "region"}, "list of column names"),
        ({**MAPPING, "label_time": "seen", "label": None}, "needs 'label'"),
    ],
)
def test_bad_mapping_names_the_key(mapping: dict, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(mapping)


def test_mapping_to_missing_columns_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    pd.DataFrame({"cust": ["a"], "as_of": ["2024-01-01"]}).to_csv(path, index=False)
    with pytest.raises(MappingError, match=r"\['limit', 'age', 'bad', 'region', 'score'\]"):
        list(csv_replay.frame_events(csv_replay.load_frame(path), parse_mapping(MAPPING)))


def test_label_time_column_dates_the_outcome() -> None:
    frame = pd.DataFrame(
        {"id": [7], "t": ["2024-01-01"], "lim": [5.0], "y": [0], "seen": ["2024-06-30"]}
    )
    mapping = parse_mapping(
        {
            "entity_id": "id",
            "event_time": "t",
            "credit_limit": "lim",
            "label": "y",
            "label_time": "seen",
        }
    )
    opened, outcome = list(csv_replay.frame_events(frame, mapping))
    assert opened["account_id"] == "7"
    assert outcome["event_time"] == "2024-06-30T00:00:00Z"
    assert outcome["payload"] == {"default_flag": 0, "observed_date": "2024-06-30"}


# ---- configuration errors and fields out of range (issue 22, item 4) --------------------------
def test_mapping_errors_are_configuration_errors() -> None:
    from ingestion.tasks import SourceError
    from riskstream.errors import ConfigurationError

    assert issubclass(MappingError, ConfigurationError)
    assert issubclass(SourceError, ConfigurationError)
    assert issubclass(ConfigurationError, ValueError)


@pytest.mark.parametrize("key", ["entity_id", "label"])
def test_an_empty_column_name_names_the_unnamed_column_spelling(key: str) -> None:
    with pytest.raises(MappingError) as raised:
        parse_mapping({**MAPPING, key: ""})
    message = str(raised.value)
    assert f"mapping '{key}' is an empty string" in message
    assert f'{{"{key}": "Unnamed: 0"}}' in message  # the fix, ready to paste


def test_an_unnamed_first_column_is_mapped_as_unnamed_0(tmp_path: Path) -> None:
    # an index written by to_csv has no header; pandas reads it as "Unnamed: 0"
    path = tmp_path / "applicants.csv"
    pd.DataFrame({"bad": [0, 1, 0], "age": [30, 44, 51]}, index=[101, 102, 103]).to_csv(path)
    assert path.read_text().startswith(",bad,age")
    mapping = parse_mapping(
        {"entity_id": "Unnamed: 0", "label": "bad", "age": "age", "observation_date": "2024-01-01"}
    )
    events = list(csv_replay.frame_events(csv_replay.load_frame(path), mapping))
    opened = [e for e in events if e["event_type"] == "account_opened"]
    assert [e["account_id"] for e in opened] == ["101", "102", "103"]
    assert [e["payload"]["age"] for e in opened] == [30, 44, 51]
    for event in events:
        validate(event, now=NOW)


def test_a_missing_column_is_named_with_its_closest_match_and_the_unnamed_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    pd.DataFrame({"customer": ["a"], "bad": [1]}, index=[7]).to_csv(path)
    mapping = parse_mapping(
        {"entity_id": "customr", "label": "bad", "observation_date": "2024-01-01"}
    )
    with pytest.raises(MappingError) as raised:
        list(csv_replay.frame_events(csv_replay.load_frame(path), mapping))
    message = str(raised.value)
    assert "mapped columns ['customr'] are not in the file" in message
    assert "for 'customr', did you mean 'customer'?" in message
    assert "columns without a header are named ['Unnamed: 0']" in message


def test_a_field_out_of_range_is_nulled_and_named_not_the_whole_row() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "bad": [0, 1, 0],
            "age": [34, 150, 29],
            "income": [52_000, 61_000, "n/a"],
            "region": ["n", "s", "e"],
        }
    )
    mapping = parse_mapping(
        {
            "entity_id": "id",
            "label": "bad",
            "age": "age",
            "income": "income",
            "attributes": ["region"],
            "observation_date": "2024-01-01",
        }
    )
    out = list(csv_replay.frame_events(frame, mapping))
    notes = [e for e in out if isinstance(e, csv_replay.FieldNulled)]
    events = [e for e in out if isinstance(e, dict)]
    assert not [e for e in out if isinstance(e, RowError)]
    assert [n.as_dict() for n in notes] == [
        {
            "row": 2,
            "field": "age",
            "reason": "age_out_of_range",
            "detail": "column 'age': payload.age=150 is above 120",
        },
        {
            "row": 3,
            "field": "income",
            "reason": "income_bad_type",
            "detail": "column 'income': payload.income must be a number, got 'n/a'",
        },
    ]
    # every applicant opened and labelled; only the bad field is null
    assert [(e["account_id"], e["event_type"]) for e in events] == [
        (a, t) for a in ("a1", "a2", "a3") for t in ("account_opened", "outcome")
    ]
    second = events[2]["payload"]
    assert second == {"age": None, "income": 61_000, "attributes": {"region": "s"}}
    assert events[3]["payload"]["default_flag"] == 1
    assert events[4]["payload"]["income"] is None and events[4]["payload"]["age"] == 29
    for event in events:
        validate(event, now=NOW)


def test_null_bad_fields_leaves_fields_that_may_not_be_null_to_validation() -> None:
    from riskstream.events import null_bad_fields

    payload = {"amount": -5.0, "merchant_category": "grocery"}
    assert null_bad_fields("purchase", payload) == []
    assert payload == {"amount": -5.0, "merchant_category": "grocery"}
    opened = {"credit_limit": 0.0, "age": 17, "income": 10.0}
    nulled = null_bad_fields("account_opened", opened)
    assert [(name, e.reason) for name, e in nulled] == [
        ("credit_limit", "out_of_range"),
        ("age", "out_of_range"),
    ]
    assert opened == {"credit_limit": None, "age": None, "income": 10.0}


@pytest.mark.parametrize(
    ("mapping", "windows"),
    [
        (
            {**MAPPING, "performance_months": 12},
            {"obs_dates": "", "performance_months": 12, "lookback_months": 0},
        ),
        (MAPPING, {"obs_dates": "", "performance_months": 0, "lookback_months": 0}),
        (
            {**MAPPING, "observation_date": "2024-01-01", "lookback_months": 9},
            {"obs_dates": "2024-01-01", "performance_months": 0, "lookback_months": 9},
        ),
    ],
)
def test_mapping_windows_carry_the_observation_date_and_windows(
    tmp_path: Path, mapping: dict, windows: dict
) -> None:
    from ingestion.tasks import mapping_windows

    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping))
    assert mapping_windows(path) == windows
    assert mapping_windows(str(path)) == windows
    assert mapping_windows(mapping) == windows
