"""A flat applicant table (tests/data/applicants.csv, made for these tests with a fixed seed:
800 applicants, a 0/1 label `bad`, numeric and categorical columns with missing values, a protected
`religion`, an all-empty `region_code`, and no date, limit or statement column) becomes valid
events, and its mapping refusals name the column and the fix. Pure: no servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.csv_replay import MappingError, frame_events, load_frame, parse_mapping
from riskstream.events import validate

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[1] / "data"
CSV = DATA / "applicants.csv"
MAPPING = DATA / "applicants.mapping.json"


def _mapping() -> dict:
    return json.loads(MAPPING.read_text())


def test_flat_applicant_table_becomes_valid_events(caplog: pytest.LogCaptureFixture) -> None:
    frame = load_frame(CSV)
    assert not {"credit_limit", "limit", "date"} & set(frame.columns)
    events = list(frame_events(frame, parse_mapping(_mapping())))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for event in events:
        assert isinstance(event, dict), event
        validate(event, now)
    opened = [e for e in events if e["event_type"] == "account_opened"]
    outcomes = [e for e in events if e["event_type"] == "outcome"]
    assert len(opened) == len(outcomes) == len(frame)
    first = opened[0]
    assert first["event_time"] == "2023-12-31T00:00:00Z"  # the day before the observation date
    assert "credit_limit" not in first["payload"]
    attributes = first["payload"]["attributes"]
    assert "protected_religion" in attributes and "religion" not in attributes
    assert "region_code" not in attributes  # empty in every row: dropped with a note
    assert "region_code" in caplog.text
    assert {o["payload"]["observed_date"] for o in outcomes} == {"2024-01-01"}
    assert sum(o["payload"]["default_flag"] for o in outcomes) == int(frame["bad"].sum())


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"observation_date": None}, "'event_time' (a date column) or 'observation_date'"),
        ({"observation_date": "01/02/2024"}, "observation_date' must be a date YYYY-MM-DD"),
        ({"performance_months": 0}, "performance_months' must be a whole number"),
        ({"protected": "religion"}, "'protected' must be a list of column names"),
    ],
)
def test_mapping_refusals_name_the_key_and_the_fix(change: dict, needle: str) -> None:
    mapping = {k: v for k, v in {**_mapping(), **change}.items() if v is not None}
    with pytest.raises(MappingError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_mapping(mapping)


def test_a_mapped_column_missing_from_the_file_is_named() -> None:
    frame = load_frame(CSV).drop(columns=["debt_ratio"])
    with pytest.raises(MappingError, match=r"\['debt_ratio'\] are not in the file.*fix the"):
        list(frame_events(frame, parse_mapping(_mapping())))
