"""A model kind's report (modelkinds.ModelKind.report): what training hands it, and where its
model-card section goes."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import modelkinds
from modelkinds import KindReport, ReportContext
from riskstream import names
from riskstream.scorescale import ScoreScale
from training.dataset import FeatureColumns
from training.modelcard import model_card
from training.models import SearchBudget, base_estimator, fit_with_search, kind_report
from training.promotion import Decision

pytestmark = pytest.mark.unit
COLUMNS = FeatureColumns(numeric=("utilisation", "months_late"), categorical=("education",))


def table(n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "utilisation": rng.uniform(0, 1.2, n),
            "months_late": rng.integers(0, 6, n).astype(float),
            "education": rng.choice(["university", "high_school"], n).astype(object),
        }
    )
    logit = 2.5 * x["utilisation"] + 0.6 * x["months_late"] - 3.5
    return x, (rng.random(n) < expit(logit)).astype(int)


def test_a_kind_without_a_report_publishes_nothing() -> None:
    x, y = table()
    fitted = fit_with_search("lr", x, y, COLUMNS, SearchBudget(max_trials=1, cv_folds=2))
    assert modelkinds.get("lr").report is None
    assert kind_report("lr", fitted.pipeline) is None


def test_the_report_sees_the_estimator_its_columns_the_calibration_and_the_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def report(estimator: Any, context: ReportContext) -> KindReport:
        seen.update(estimator=estimator, context=context)
        return KindReport({"table.csv": "a,b\n"}, "## Section\n")

    lr = modelkinds.get("lr")
    monkeypatch.setitem(modelkinds.REGISTRY, "lr", dataclasses.replace(lr, report=report))
    x, y = table()
    fitted = fit_with_search("lr", x, y, COLUMNS, SearchBudget(max_trials=1, cv_folds=2))
    scale = ScoreScale(base_score=650, pdo=40)
    out = kind_report("lr", fitted.pipeline, scale)
    assert out == KindReport({"table.csv": "a,b\n"}, "## Section\n")
    context = seen["context"]
    assert seen["estimator"] is base_estimator(fitted.pipeline)
    assert context.scale == scale
    pre = fitted.pipeline.named_steps["preprocess"]
    assert list(context.columns) == list(pre.get_feature_names_out())
    assert context.preprocess is pre
    # the served pd is expit(slope * decision + intercept): the calibration, as documented
    slope, intercept = context.calibration
    raw = seen["estimator"].decision_function(pre.transform(x))
    np.testing.assert_allclose(
        expit(slope * raw + intercept), fitted.pipeline.predict_proba(x)[:, 1], rtol=1e-12
    )


def _card_args(run: Any, **changes: Any) -> dict[str, Any]:
    """model_card's arguments for a promoted LR version of ``run``, with ``changes``."""
    return {
        "name": "m",
        "version": "1",
        "kind": "lr",
        "config": {},
        "parent": run,
        "best": run,
        "split": {},
        "features": {},
        "fairness": {"attributes": {}},
        "decision": Decision(True, "promoted", "promoted"),
        "test_rows": 10,
        **changes,
    }


def test_the_model_card_shows_the_kinds_section_after_the_metrics() -> None:
    run = SimpleNamespace(data=SimpleNamespace(metrics={}, tags={}, params={}))
    common = _card_args(run)
    card = model_card(**common, kind_section="## Points table\n| a | b |\n")
    assert card.index("## Metrics") < card.index("## Points table") < card.index("## Fairness")
    assert "## Points table" not in model_card(**common)


def test_the_model_card_reports_in_time_and_out_of_time_figures_by_month() -> None:
    metrics = {
        "roc_auc": 0.80,
        "in_time_roc_auc": 0.83,
        "in_time_ks": 0.5,
        "in_time_brier": 0.09,
        "in_time_ece": 0.01,
        "in_time_rows": 400.0,
    }
    run = SimpleNamespace(data=SimpleNamespace(metrics=metrics, tags={}, params={}))
    by_date = {
        "in_time": [{"obs_date": "2024-07-01", "rows": 400, "default_rate": 0.1, "roc_auc": 0.83}],
        "test": [{"obs_date": "2024-12-01", "rows": 90, "default_rate": 0.0, "roc_auc": None}],
    }
    split = {"strategy": names.SPLIT_OUT_OF_TIME, "test_obs_dates": ["2024-12-01"]}
    card = model_card(**_card_args(run, split=split, test_rows=90, by_date=by_date))
    assert "test rows (out of time: observation dates ['2024-12-01']" in card
    assert "In time (the held-out accounts at the training dates, 400 rows): ROC-AUC 0.8300" in card
    assert "out of time minus in time: ROC-AUC -0.0300" in card
    assert "| 2024-07-01 | in time | 400 | 0.1000 | 0.8300 |" in card
    assert "| 2024-12-01 | test | 90 | 0.0000 | n/a |" in card
