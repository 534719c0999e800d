"""A flat applicant table through the whole pipeline DAG under `dag.test()`: real moto over HTTP,
real Spark, a real MLflow (the same path as `riskstream run --source csv`).

tests/data/applicants.csv: one row per applicant, a 0/1 label, numeric and categorical columns
with missing values, a protected column, an all-empty column, and no date, limit or statement
column; tests/data/applicants.mapping.json gives the observation date.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskstream.settings import Settings
from tests.dags.conftest import run_pipeline_end_to_end

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.timeout(1500)
def test_flat_applicant_csv_runs_end_to_end(
    airflow_home: Path, mlflow_settings: Settings, tmp_path: Path
) -> None:
    params = {
        "source": "csv",
        "csv_path": str(DATA / "applicants.csv"),
        "csv_mapping": str(DATA / "applicants.mapping.json"),
        "models": "lr,xgb",
        # ~270 test applicants cannot measure calibration to the production cap of 0.05, and the
        # table's signal is weak (cross-validated LR ROC-AUC about 0.65): this test is about the
        # flow, so the gates are loose enough that a first model always becomes champion
        "max_ece": 0.25,
        "min_ks": 0.05,
    }
    settings, _ = run_pipeline_end_to_end(
        airflow_home,
        mlflow_settings,
        tmp_path,
        prefix="csv",
        params=params,
        log_name="applicant-csv-e2e.log",
        succeeded=(
            "produce_events",
            "land_events",
            "raw_to_curated",
            "curated_to_features",
            "start_training",
            "train_lr",
            "train_xgb",
            "evaluate_and_register",
            "promote_champion",
            "score_portfolio",
        ),
    )

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    features = json.loads(
        Path(client.download_artifacts(champion.run_id, "features.json")).read_text()
    )
    inputs = set(features["features"])
    assert {"attr_debt_ratio", "attr_late_30d_count", "attr_housing", "income"} <= inputs
    assert not {"age", "sex", "attr_protected_religion", "attr_region_code"} & inputs
    assert {"age", "sex", "attr_protected_religion"} <= set(
        features["protected_present_not_inputs"]
    )
    assert "credit_limit" in features["dropped_all_empty"]
    # the mapping's performance window reached the features job and the model's record
    assert champion.tags["performance_months"] == "12"
