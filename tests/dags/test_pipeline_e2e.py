"""The whole pipeline DAG under `dag.test()`: real moto over HTTP, real Spark, a real MLflow.

Small data (a few hundred synthetic accounts) so that it fits in a CI run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from infra.provision import provision
from pipeline.asl import ASL_PATH
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.dags.conftest import run_dag_test

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(1500)
def test_pipeline_runs_end_to_end(
    airflow_home: Path, mlflow_settings: Settings, tmp_path: Path
) -> None:
    settings = mlflow_settings.with_overrides(
        prefix=f"e2e{uuid.uuid4().hex[:8]}", state_dir=tmp_path / "state"
    )
    provision(settings)
    params = {
        "source": "synthetic",
        "accounts": 300,
        "months": 6,
        "seed": 11,
        "models": "lr,rf,xgb",
        "train_budget_seconds": 5,
        # ~100 test accounts cannot measure calibration to the production cap of 0.05
        "max_ece": 0.25,
    }
    log = Path(__file__).resolve().parents[1] / "artifacts" / "pipeline-e2e.log"
    out = run_dag_test(airflow_home, settings, ASL_PATH, params, timeout=1500, log=log)
    failed = {t: s for t, s in out["states"].items() if s not in ("success", "skipped")}
    assert out["run"] == "success", f"{failed}; the whole output is in {log}"
    for task in (
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
    ):
        assert out["states"][task] == "success", (task, out["states"])
    assert out["states"]["handle_failure"] == "skipped"

    s3 = make_client(settings, "s3")
    raw = s3.list_objects_v2(Bucket=settings.bucket("raw"), Prefix="events/")
    assert raw.get("KeyCount", 0) > 0
    scores = s3.list_objects_v2(Bucket=settings.bucket("scores"), Prefix="scores/")
    assert any(o["Key"].endswith(".parquet") for o in scores.get("Contents", []))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert champion.tags.get("model_type") in {"lr", "rf", "xgb"}
    assert "decision_reason" in champion.tags
    # the whole 6-month history, recorded with the model (tags and card)
    assert (champion.tags["lookback_months"], champion.tags["performance_months"]) == ("6", "1")
