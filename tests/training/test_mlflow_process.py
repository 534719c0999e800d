"""The MLflow service: a real server, artifacts landing in the local cloud's S3."""

from __future__ import annotations

import mlflow
import pytest

from riskstream.clients import make_client
from riskstream.settings import Settings
from training.mlflow_process import MlflowConfigError, artifacts_destination, mlflow_spec

pytestmark = pytest.mark.integration  # the session's moto server (and MLflow)


def test_spec_names_port_backend_and_s3_destination(cloud_settings: Settings) -> None:
    settings = cloud_settings.with_overrides(mlflow_tracking_uri="http://127.0.0.1:5123")
    spec = mlflow_spec(settings)
    assert spec.port == 5123
    assert spec.host == "127.0.0.1"
    argv = list(spec.argv)
    assert argv[argv.index("--artifacts-destination") + 1] == "s3://rstest-artifacts/mlflow"
    assert argv[argv.index("--backend-store-uri") + 1].startswith("sqlite:///")
    assert spec.env["MLFLOW_S3_ENDPOINT_URL"] == settings.endpoint_url


def test_bad_tracking_uri_is_named(cloud_settings: Settings) -> None:
    settings = cloud_settings.with_overrides(mlflow_tracking_uri="file:./mlruns")
    with pytest.raises(MlflowConfigError, match=r"file:\./mlruns"):
        mlflow_spec(settings)


def test_artifacts_are_proxied_into_s3(mlflow_settings: Settings, tmp_path) -> None:
    client = mlflow.MlflowClient(tracking_uri=mlflow_settings.mlflow_tracking_uri)
    experiment_id = client.create_experiment("service-test")
    run = client.create_run(experiment_id)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    s3 = make_client(mlflow_settings, "s3")
    dest = artifacts_destination(mlflow_settings)
    bucket, prefix = dest[len("s3://") :].split("/", 1)
    # every page: the session's MLflow server keeps all tests' artifacts under this prefix
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/note.txt") for k in keys), keys
