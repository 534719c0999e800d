"""Serving fixtures: a champion registered in the session's real MLflow server, and feature
partitions in the session's real moto S3. The serving tests share one prefix of their own (their
own registered model name, buckets and Glue database), so they never meet training's models."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import (
    CATEGORICAL,
    NUMERIC,
    features_frame,
    fit_pipeline,
    register_champion,
    write_features,
)
from infra.provision import provision
from infra.services import ManagedService
from riskstream.settings import Settings
from serving.processes import api_service
from tests.conftest import running_on_a_free_port

OBS_DATE = dt.date(2026, 1, 31)


def application(row: dict[str, Any]) -> dict[str, Any]:
    """A feature row as one item of the API's ``applications`` (NumPy scalars made plain)."""
    out: dict[str, Any] = {"application_id": str(row["account_id"])}
    for name in NUMERIC + CATEGORICAL:
        value = row[name]
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


@dataclass
class ServingWorld:
    settings: Settings
    train: pd.DataFrame
    pipeline: Any
    version: str


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


@pytest.fixture(scope="module")
def api_url(world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API (uvicorn in its own process) for the world's champion, TTL 1 s. Up for the
    module that asks for it, not the session: it checks the registry and the online table every
    second, which cost the servers a few hundred checks while the worker ran other modules."""
    state_dir = tmp_path_factory.mktemp("api")

    def configure(port: int) -> tuple[Settings, ManagedService]:
        settings = world.settings.with_overrides(
            api_url=f"http://127.0.0.1:{port}", state_dir=state_dir
        )
        service = api_service(settings, ttl=1.0)
        return settings, service

    with running_on_a_free_port(configure) as (settings, _):
        yield settings.api_url
