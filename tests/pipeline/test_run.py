"""`riskstream run`'s console: its flags, the checks before any service starts, the summary's
lines (wrapped at spaces, reason counters listed) and a failed step's error printed itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline import run
from pipeline.cli import build_parser, main
from riskstream.commands import CommandError
from riskstream.settings import Settings


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["run", *argv])


@pytest.fixture
def applicant_files(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "applicants.csv"
    pd.DataFrame({"bad": [0, 1], "age": [30, 40]}, index=[5, 6]).to_csv(data)  # unnamed ids
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps({"entity_id": "Unnamed: 0", "label": "bad", "observation_date": "2024-01-01"})
    )
    return data, mapping


# ---- flags ------------------------------------------------------------------------------------
@pytest.mark.unit
def test_run_takes_path_and_mapping_as_produce_does(
    applicant_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, mapping = applicant_files
    monkeypatch.chdir(data.parent)
    args = _args("--source", "csv", "--path", data.name, "--mapping", mapping.name)
    # absolute paths: Airflow's tasks do not run in this directory
    assert run.source_conf(args) == {"csv_path": str(data), "csv_mapping": str(mapping)}
    produce = build_parser().parse_args(["produce", "--source", "csv", "--path", "x"])
    assert str(produce.path) == "x"


@pytest.mark.unit
def test_the_old_run_spelling_still_works_hidden(
    applicant_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data, mapping = applicant_files
    args = _args("--source", "csv", "--csv-path", str(data), "--csv-mapping", str(mapping))
    assert run.source_conf(args) == {"csv_path": str(data), "csv_mapping": str(mapping)}
    assert "--csv-path is the old spelling of --path" in caplog.text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = capsys.readouterr().out
    assert "--path" in shown and "--mapping" in shown
    assert "--csv-path" not in shown and "--csv-mapping" not in shown


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["produce", "--csv-path", "x.csv"], "--csv-path: `riskstream produce` spells it --path"),
        (["produce", "--csv-mapping=m.json"], "`riskstream produce` spells it --mapping"),
        (["run", "--pth", "x.csv"], "--pth: `riskstream run` spells it --path"),
    ],
)
def test_a_refused_flag_names_the_right_one(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and hint in err


@pytest.mark.unit
def test_a_bad_mapping_is_refused_before_anything_starts(
    applicant_files: tuple[Path, Path],
) -> None:
    data, mapping = applicant_files
    mapping.write_text(json.dumps({"entity_id": "", "observation_date": "2024-01-01"}))
    with pytest.raises(CommandError) as raised:
        run.source_conf(_args("--source", "csv", "--path", str(data), "--mapping", str(mapping)))
    assert raised.value.exit_code == 2
    assert "configuration error: mapping 'entity_id' is an empty string" in str(raised.value)
    assert '{"entity_id": "Unnamed: 0"}' in str(raised.value)
    mapping.write_text(json.dumps({"entity_id": "id", "observation_date": "2024-01-01"}))
    with pytest.raises(CommandError, match=r"\['id'\] are not in the file"):
        run.source_conf(_args("--source", "csv", "--path", str(data), "--mapping", str(mapping)))
    with pytest.raises(CommandError, match="needs --path"):
        run.source_conf(_args("--source", "csv", "--mapping", str(mapping)))
    with pytest.raises(CommandError, match="--mapping goes with --source csv"):
        run.source_conf(_args("--source", "synthetic", "--mapping", str(mapping)))
    assert run.source_conf(_args("--source", "taiwan", "--path", str(data))) == {
        "taiwan_path": str(data)
    }


# ---- the summary ------------------------------------------------------------------------------
REASON = (
    "rejected: calibration error (ECE) 0.0712 exceeds the cap 0.0500, and the challenger is "
    "not significantly better than the champion (p=0.4132)"
)


@pytest.mark.unit
@pytest.mark.parametrize("width", range(5, len(REASON) + 5, 3))
def test_shorten_never_cuts_inside_a_word_or_number(width: int) -> None:
    short = run.shorten(REASON, width)
    kept = short.removesuffix(" ...").split()
    assert kept == REASON.split()[: len(kept)]
    assert short == REASON or short.endswith(" ...")


@pytest.mark.unit
def test_summary_wraps_whole_numbers_and_lists_reason_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = Settings.from_mapping({"RISKSTREAM_STATE_DIR": str(tmp_path)})
    states = {
        "produce_events": {"state": "success", "start_date": "1"},
        "raw_to_curated": {"state": "success", "start_date": "1a"},
        "evaluate_and_register": {"state": "success", "start_date": "2"},
    }
    results = {
        "produce_events": {
            "sent": 3_999,
            "rejected": 2,
            "reasons": {"missing_entity_id": 2},
            "nulled_fields": 3,
            "nulled_reasons": {"age_out_of_range": 2, "income_bad_type": 1},
        },
        "raw_to_curated": {"rows_in": 4_000, "quarantined": {"bad_json": 1}},
        "evaluate_and_register": {"promoted": False, "reason": REASON, "version": "3"},
    }
    run.print_summary(settings, run.RunOutcome("r", "success", states, results), run.Phases(), 12.0)
    out = capsys.readouterr().out
    assert all(len(line) <= run.WIDTH for line in out.splitlines() if "://" not in line)
    words = out.split()
    for word in REASON.split():  # every number and word of the reason whole, none cut
        assert word in words, word
    assert "reasons: missing_entity_id 2" in out
    assert "nulled_reasons: age_out_of_range 2, income_bad_type 1" in out
    assert "quarantined: bad_json 1" in out


# ---- a failed step's error, printed itself ----------------------------------------------------
@pytest.mark.integration
def test_a_failed_step_prints_its_error_and_fix(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingestion.csv_replay import MappingError, parse_mapping
    from pipeline.steps import StepContext, record_failure

    with pytest.raises(MappingError) as raised:
        parse_mapping({"entity_id": "", "observation_date": "2024-01-01"})
    ctx = StepContext(run_id="manual__2026-01-01T00:00:00", run_date="2026-01-01")
    record_failure(provisioned, ctx, "ProduceEvents", 1, raised.value)
    states = {"produce_events": {"state": "failed", "try_number": 1}}
    run._explain_failure(
        provisioned, "credit_risk_pipeline", ctx.run_id, ["produce_events"], states
    )
    out = capsys.readouterr().out
    assert "FAILED: task produce_events after 1 attempt\n" in out
    flat = " ".join(out.split())
    assert "MappingError: mapping 'entity_id' is an empty string" in flat
    assert '{"entity_id": "Unnamed: 0"}' in flat
    assert "its log: " in out and "task_id=produce_events" in out
    assert run.failure_notes(provisioned, "no-such-run") == []
