"""A train step whose kind the run did not choose answers 'skipped' without loading the training
stack: under Step Functions each step is a process of its own, and a run with ``models=lr``
started one per other kind only to import MLflow, scikit-learn and XGBoost."""

from __future__ import annotations

import pytest

from tests.light_imports import heavy_loaded_by

pytestmark = pytest.mark.unit


def test_a_skipped_train_step_loads_no_training_stack() -> None:
    code = (
        "from pipeline import steps\n"
        "from riskstream.settings import Settings\n"
        "ctx = steps.StepContext(run_id='r', run_date='2026-01-01', params={'models': 'lr'},"
        " results={})\n"
        "try:\n"
        "    steps.train_step('rf')(Settings.from_mapping({}), ctx)\n"
        "except steps.StepSkipped as exc:\n"
        "    assert 'rf' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('not skipped')\n"
    )
    heavy = {"training.train", "mlflow", "sklearn", "xgboost"}
    assert heavy_loaded_by(code, heavy) == []
