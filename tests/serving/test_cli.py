"""The riskstream commands of the serving package, run through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from tests.serving.conftest import ServingWorld

pytestmark = pytest.mark.integration


@pytest.fixture
def env(world: ServingWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> ServingWorld:
    for key, value in world.settings.to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return world


def test_score_then_sql(env: ServingWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--date", "2026-02-06"]) == 0
    report = json.loads(capsys.readouterr().out.split("\nWARNING")[0])
    assert report["rows"] == 300 and report["score_date"] == "2026-02-06"
    assert report["model_version"] == env.version
    query = "select count(*) as n from scores where score_date = '2026-02-06'"
    assert main(["sql", query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 300}]


def test_user_errors_are_one_line(env: ServingWorld, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["score", "--date", "not-a-date"]) == 1
    assert "score_date='not-a-date'" in caplog.text
    assert main(["sql", "select * from nowhere"]) == 1
    assert "tables in" in caplog.text


def test_api_status_when_stopped(env: ServingWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["api", "status"]) == 3
    assert "stopped" in capsys.readouterr().out
