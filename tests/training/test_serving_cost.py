"""Serving cost is part of promotion: the compiled scorer's single-row latency is measured on a
real fitted pipeline, and a challenger over the budget is not promoted unless overridden."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from benchmarks.fixtures import features_frame, fit_pipeline
from riskstream.settings import DEFAULT_SERVING_BUDGET_MS, Settings, SettingsError
from training.config import TrainingConfig
from training.promotion import PromotionPolicy, decide
from training.serving_cost import measure

pytestmark = pytest.mark.unit

GOOD = {"roc_auc": 0.80, "ks": 0.45, "ece": 0.02}
TRAIN = features_frame(600, dt.date(2025, 12, 31), seed=31)
TEST = features_frame(120, dt.date(2026, 1, 31), seed=32)


def policy(budget: float, override: bool = False) -> PromotionPolicy:
    return PromotionPolicy(0.05, 0.2, 0.05, override=override, serving_budget_ms=budget)


def test_an_over_budget_challenger_is_not_promoted_even_as_the_first_champion() -> None:
    d = decide(GOOD, policy(5.0), serving_p99_ms=7.25)
    assert not d.promote and d.outcome == "rejected_latency"
    assert "serving p99 7.250 ms" in d.reason and "budget 5 ms" in d.reason
    assert "RISKSTREAM_SERVING_BUDGET_MS" in d.reason and "promote_override" in d.reason
    assert d.tags()["decision"] == "rejected_latency"


def test_the_override_waives_the_budget_and_says_so() -> None:
    d = decide(GOOD, policy(5.0, override=True), serving_p99_ms=7.25)
    assert d.promote and "waived by promote_override" in d.reason


def test_within_budget_or_no_budget_the_usual_rule_decides() -> None:
    within = decide(GOOD, policy(5.0), serving_p99_ms=0.8)
    assert within.promote and within.outcome == "promoted"
    assert "serving p99 0.800 ms" in within.reason
    assert decide(GOOD, policy(0.0), serving_p99_ms=1e6).promote  # 0: no budget
    assert decide(GOOD, policy(5.0)).promote  # not measured


@pytest.mark.parametrize("kind", ["rf", "xgb", "lr"])
def test_the_cost_is_measured_on_the_compiled_scorer_of_a_real_pipeline(kind: str) -> None:
    pipeline = fit_pipeline(kind, TRAIN, calibrated=True)
    cost = measure(pipeline, TEST, rows=30, repeats=2)
    assert cost.rows == 30 and 0 < cost.p50_ms <= cost.p99_ms and math.isfinite(cost.p99_ms)
    expected = "TreeSHAP (path-dependent, exact)" if kind != "lr" else "coef x"
    assert cost.reason_method.startswith(expected)
    assert "over 30 test rows" in cost.describe()
    # the same pipeline against a budget it cannot meet: not promoted
    d = decide(GOOD, policy(cost.p99_ms / 2), serving_p99_ms=cost.p99_ms)
    assert not d.promote and d.outcome == "rejected_latency"


def test_the_budget_comes_from_the_settings_into_the_policy() -> None:
    assert Settings().serving_budget_ms == DEFAULT_SERVING_BUDGET_MS
    settings = Settings.from_mapping({"RISKSTREAM_SERVING_BUDGET_MS": "2.5"})
    assert settings.serving_budget_ms == 2.5
    assert Settings.from_mapping(settings.to_env()).serving_budget_ms == 2.5
    config = TrainingConfig(models=("lr",)).with_settings(settings)
    assert config.policy.serving_budget_ms == 2.5
    assert TrainingConfig.from_params(config.to_params()).serving_budget_ms == 2.5
    with pytest.raises(SettingsError, match="RISKSTREAM_SERVING_BUDGET_MS='fast'"):
        Settings.from_mapping({"RISKSTREAM_SERVING_BUDGET_MS": "fast"})
    with pytest.raises(SettingsError, match="must be 0"):
        Settings(serving_budget_ms=-1.0)
