"""The whole pipeline DAG under `dag.test()`: real moto over HTTP, real Spark, a real MLflow.

Small data (a few hundred synthetic accounts) so that it fits in a CI run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import split_s3
from tests.dags.conftest import run_pipeline_end_to_end

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(1500)
def test_pipeline_runs_end_to_end(
    airflow_home: Path, mlflow_settings: Settings, tmp_path: Path
) -> None:
    params = {
        "source": "synthetic",
        "accounts": 300,
        # the shortest run with a 6-month lookback and a 6-month window (names.synthetic_windows)
        "months": 12,
        "seed": 11,
        "models": "lr,rf,xgb",
        "train_budget_seconds": 5,
        # ~100 test accounts cannot measure calibration to the production cap of 0.05
        "max_ece": 0.25,
    }
    settings, out = run_pipeline_end_to_end(
        airflow_home,
        mlflow_settings,
        tmp_path,
        prefix="e2e",
        params=params,
        log_name="pipeline-e2e.log",
        succeeded=(
            "produce_events",
            "land_events",
            "raw_to_curated",
            "curated_to_features",
            "start_training",
            "train_lr",
            "train_rf",
            "train_xgb",
            "evaluate_and_register",
            "promote_champion",  # the first model of a fresh registry is promoted
            "score_portfolio",
        ),
    )
    assert out["states"]["handle_failure"] == "skipped"

    s3 = make_client(settings, "s3")
    raw = s3.list_objects_v2(Bucket=settings.bucket("raw"), Prefix="events/")
    assert raw.get("KeyCount", 0) > 0
    bucket, prefix = split_s3(names.scores_location(settings) + "/")
    scores = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(o["Key"].endswith(".parquet") for o in scores.get("Contents", []))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert champion.tags.get("model_type") in {"lr", "rf", "xgb"}
    assert "decision_reason" in champion.tags
    # the panel's windows, recorded with the model (tags and card)
    assert (champion.tags["lookback_months"], champion.tags["performance_months"]) == ("6", "6")
