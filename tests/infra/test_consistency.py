"""`riskstream status` names a registered model version whose artifacts are gone."""

from __future__ import annotations

import uuid

import pytest

from infra.consistency import check_registry
from riskstream.clients import make_client
from riskstream.settings import Settings

pytestmark = pytest.mark.integration


def test_a_version_without_its_mlmodel_is_named(mlflow_settings: Settings) -> None:
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    uri = mlflow_settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    name = f"consistency-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(name)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    kept = mlflow.register_model(info.model_uri, name)
    with mlflow.start_run():
        info2 = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    lost = mlflow.register_model(info2.model_uri, name)
    MlflowClient(uri).set_registered_model_alias(name, "champion", lost.version)

    mine = [c for c in check_registry(uri) if c.name == name]
    assert [(c.version, c.ok) for c in sorted(mine, key=lambda c: c.version)] == [
        (kept.version, True),
        (lost.version, True),
    ]

    # the artifacts of the second version vanish (as after a restart of an in-memory cloud)
    s3 = make_client(mlflow_settings, "s3")
    bucket = mlflow_settings.bucket("artifacts")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
        if info2.model_id in o["Key"]
    ]
    assert keys, "the model's artifacts were not where the test looked"
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)

    mine = {c.version: c for c in check_registry(uri) if c.name == name}
    assert mine[kept.version].ok
    broken = mine[lost.version]
    assert not broken.ok
    assert f"{name} v{lost.version} (champion): CANNOT LOAD" in broken.line()
