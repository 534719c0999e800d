"""`riskstream etl ...` handlers on an empty, provisioned local cloud: no traceback, clear words."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from pipeline.cli import build_parser
from riskstream.commands import CommandError
from riskstream.settings import Settings


@pytest.mark.integration
def test_raw_to_curated_with_no_raw_data_says_nothing_to_do(
    spark: SparkSession, provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["etl", "raw-to-curated", "--run-date", "2026-01-15"])
    assert args.func(args, provisioned) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out
    assert '"rows_in": 0' in out


@pytest.mark.integration
def test_features_without_curated_data_name_the_fix(
    spark: SparkSession, provisioned: Settings
) -> None:
    args = build_parser().parse_args(["etl", "curated-to-features", "--run-date", "2026-01-15"])
    with pytest.raises(CommandError, match="pass --obs_dates"):
        args.func(args, provisioned)


@pytest.mark.unit
def test_bad_run_date_is_named() -> None:
    from etl.glue import GlueArgumentError
    from etl.jobs.common import parse_date

    with pytest.raises(GlueArgumentError, match="--run_date '2026-13-01'"):
        parse_date("run_date", "2026-13-01")


@pytest.mark.integration
def test_compact_on_an_empty_lake_does_nothing(
    provisioned: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["etl", "compact"])
    assert args.func(args, provisioned) == 0
    assert "0 partition(s) compacted" in capsys.readouterr().out
    bad = build_parser().parse_args(["etl", "compact", "--table", "nope"])
    with pytest.raises(CommandError, match="'nope' is not a curated table"):
        bad.func(bad, provisioned)
