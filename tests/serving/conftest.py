"""Serving fixtures: a champion registered in the session's real MLflow server, and feature
partitions in the session's real moto S3. The serving tests share one prefix of their own (their
own registered model name, buckets and Glue database), so they never meet training's models."""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.provision import provision
from infra.services import ManagedService
from riskstream import names
from riskstream.settings import Settings
from serving.processes import api_service
from serving.storage import s3_filesystem
from tests.conftest import up_on_a_free_port
from tests.serving.factory import CATEGORICAL, NUMERIC, baseline_for, features_frame, fit_pipeline

OBS_DATE = dt.date(2026, 1, 31)


@dataclass
class ServingWorld:
    settings: Settings
    train: pd.DataFrame
    pipeline: Any
    version: str


def register_champion(
    settings: Settings,
    pipeline: Any,
    train: pd.DataFrame,
    kind: str,
    threshold: float = 0.3,
    alias: str = "champion",
) -> str:
    """Log ``pipeline`` the way training does and point ``alias`` at the new version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(f"{settings.prefix}-serving-tests")
    x = train[NUMERIC + CATEGORICAL]
    with mlflow.start_run() as run, warnings.catch_warnings():
        # integer features are never missing here; MLflow's hint about that is noise
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(x, pipeline.predict_proba(x)[:, 1]),
            input_example=x.head(2),
            registered_model_name=settings.registered_model_name,
            serialization_format="cloudpickle",
        )
        mlflow.log_dict(baseline_for(pipeline, train), "baseline/baseline.json")
    client = MlflowClient(settings.mlflow_tracking_uri)
    version = str(info.registered_model_version)
    tags = {"model_type": kind, "threshold": str(threshold), "roc_auc": "0.81", "ks": "0.45"}
    for key, value in tags.items():
        client.set_model_version_tag(settings.registered_model_name, version, key, value)
    client.set_registered_model_alias(settings.registered_model_name, alias, version)
    assert run.info.run_id
    return version


def write_features(settings: Settings, frame: pd.DataFrame, obs_date: dt.date) -> None:
    """One feature partition as ETL writes it (obs_date as a column and in the path)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("obs_date"),
        "obs_date",
        pa.array(list(frame["obs_date"]), pa.date32()),
    )
    path = names.features_location(settings, obs_date).removeprefix("s3://") + "/part-0.parquet"
    pq.write_table(table, path, filesystem=s3_filesystem(settings))


@pytest.fixture(scope="session")
def serving_settings(mlflow_settings: Settings) -> Settings:
    settings = mlflow_settings.with_overrides(prefix=f"sv{uuid.uuid4().hex[:8]}")
    provision(settings)
    return settings


@pytest.fixture(scope="session")
def world(serving_settings: Settings) -> ServingWorld:
    """An XGBoost champion fitted on 600 synthetic rows, and 300 accounts to score."""
    train = features_frame(600, dt.date(2025, 12, 31), seed=1)
    pipeline = fit_pipeline("xgb", train)
    version = register_champion(serving_settings, pipeline, train, "xgb")
    write_features(serving_settings, features_frame(300, OBS_DATE, seed=2), OBS_DATE)
    return ServingWorld(serving_settings, train, pipeline, version)


@pytest.fixture(scope="session")
def api_url(world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API (uvicorn in its own process) for the world's champion, TTL 1 s."""
    state_dir = tmp_path_factory.mktemp("api")

    def start(port: int) -> tuple[Settings, ManagedService]:
        settings = world.settings.with_overrides(
            api_url=f"http://127.0.0.1:{port}", state_dir=state_dir
        )
        service = api_service(settings, ttl=1.0)
        service.up()
        return settings, service

    settings, service = up_on_a_free_port(start)
    try:
        yield settings.api_url
    finally:
        service.down()
