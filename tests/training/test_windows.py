"""The feature windows recorded with a model: the pipeline's lookback for a synthetic portfolio,
the training config's round trip through MLflow params, and the model card's wording. Pure."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from pipeline.steps import StepContext, feature_lookback, feature_performance
from riskstream.names import PIPELINE_DEFAULTS
from training.config import TrainingConfig
from training.modelcard import _months
from training.registry_io import _obs_dates

pytestmark = pytest.mark.unit


def test_synthetic_portfolio_gets_a_panel_and_a_12_month_window() -> None:
    assert feature_lookback("synthetic", 24) == 6
    assert feature_performance("synthetic", 24) == 12  # 7 observation dates
    assert feature_performance("synthetic", 60) == 12
    assert feature_performance("synthetic", 12) == 6  # shorter data: a shorter window
    assert feature_performance("synthetic", 6) == 5  # the rest of the history after month 1
    assert feature_lookback("synthetic", 3) == 6  # the features job needs 6-24 months
    assert feature_lookback("taiwan", 12) is None  # the job's default
    assert feature_performance("taiwan", 12) is None  # Taiwan's published one month
    assert feature_lookback("csv", 12) is None
    ctx = StepContext("r", "2026-01-01", params={})
    assert PIPELINE_DEFAULTS["months"] == 24
    assert feature_performance(ctx.param("source"), ctx.param("months")) == 12


def test_windows_round_trip_through_params() -> None:
    config = dataclasses.replace(TrainingConfig(), lookback_months=12, performance_months=1)
    params = config.to_params()
    assert params["lookback_months"] == "12" and params["performance_months"] == "1"
    assert TrainingConfig.from_params(params) == config
    assert TrainingConfig().lookback_months == 0  # not known unless the pipeline says


def test_card_and_tags_wording() -> None:
    assert _months("12") == "12 months"
    assert _months("0") == "not recorded" and _months(None) == "not recorded"
    assert _obs_dates({"obs_dates": ["2025-01-31"]}) == ["2025-01-31"]
    split = {"train_obs_dates": ["2025-01-31", "2025-02-28"], "test_obs_dates": ["2025-03-31"]}
    assert _obs_dates(split) == ["2025-01-31", "2025-02-28", "2025-03-31"]
    assert _obs_dates(SimpleNamespace().__dict__) == []
