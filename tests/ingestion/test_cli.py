from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from riskstream.settings import Settings
from tests.ingestion.helpers import landed_ids, make_client, quarantined

pytestmark = pytest.mark.integration


@pytest.fixture
def env(provisioned: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RISKSTREAM_TARGET", "embedded")
    monkeypatch.setenv("RISKSTREAM_CLOUD_PORT", str(provisioned.cloud_port))
    monkeypatch.setenv("RISKSTREAM_PREFIX", provisioned.prefix)
    monkeypatch.setenv("RISKSTREAM_STATE_DIR", str(provisioned.state_dir))
    return provisioned


def run(*argv: str) -> int:
    return main(["--env-file", "/nonexistent", *argv])


def test_produce_synthetic_then_consume(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("produce", "--accounts", "15", "--months", "3", "--seed", "5", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "failed 0, rejected 0" in out and "oracle/synthetic/true_pd.parquet" in out
    assert run("consume", "--once") == 0
    out = capsys.readouterr().out
    assert "quarantined 0" in out
    ids = landed_ids(env)
    assert len(ids) == len(set(ids)) > 15 * 4
    body = (
        make_client(env, "s3")
        .get_object(Bucket=env.bucket("artifacts"), Key="oracle/synthetic/true_pd.parquet")["Body"]
        .read()
    )
    oracle = pq.read_table(io.BytesIO(body))
    assert oracle.column_names == [
        "account_id",
        "obs_date",
        "true_pd",
        "observed_date",
        "attainable_pd",
    ]
    assert str(oracle.schema.field("observed_date").type) == "date32[day]"
    # a row per account and observation date (the starts of months 2-4) until it defaults
    assert 15 < oracle.num_rows <= 15 * 3
    assert not any("true_pd" in line for line in map(str, ids))


def test_produce_csv_reports_bad_rows(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "book.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", ""],
            "t": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "lim": [100, -1, 5],
            "y": [0, 1, 1],
        }
    ).to_csv(data, index=False)
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"entity_id": "id", "event_time": "t", "credit_limit": "lim", "label": "y"})
    )
    report = tmp_path / "report.json"
    code = run(
        "produce",
        "--source",
        "csv",
        "--path",
        str(data),
        "--mapping",
        str(mapping),
        "--no-progress",
        "--report",
        str(report),
    )
    assert code == 0
    full = json.loads(report.read_text())
    # a's and b's opened + outcome: b's limit of -1 is out of range, sent as null (the
    # contract allows a null limit), the row kept; the row without an id is rejected
    assert full["sent"] == 4
    assert [r["reason"] for r in full["rejected_records"]] == ["missing_entity_id"]
    assert full["nulled_fields"] == 1
    assert full["nulled_reasons"] == {"credit_limit_out_of_range": 1}
    assert full["nulled_fields_records"] == [
        {
            "row": 2,
            "field": "credit_limit",
            "reason": "credit_limit_out_of_range",
            "detail": "column 'lim': payload.credit_limit=-1 is below 0.01",
        }
    ]
    out = capsys.readouterr().out
    assert "not sent" in out and "credit_limit_out_of_range" in out
    assert run("consume") == 0
    assert len(landed_ids(env)) == 4 and quarantined(env) == []


def test_user_errors_are_one_clear_line(
    env: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run("produce", "--source", "csv", "--path", str(tmp_path / "x.csv")) == 1
    assert "needs --path (CSV or Parquet) and --mapping" in caplog.text
    assert run("produce", "--accounts", "0") == 1
    assert "accounts=0 must be between" in caplog.text
    assert run("consume", "--max-seconds", "3") == 1
    assert "--max-seconds goes with --follow" in caplog.text


def test_missing_stream_says_to_provision(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RISKSTREAM_CLOUD_PORT", str(isolated_settings.cloud_port))
    monkeypatch.setenv("RISKSTREAM_PREFIX", isolated_settings.prefix)
    assert run("produce", "--accounts", "2", "--months", "2", "--no-progress") == 1
    assert "riskstream provision" in caplog.text
