"""Training fixtures: a small Taiwan-shaped feature table written to the session's moto S3."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.fixtures import read_taiwan_features
from infra.provision import provision
from riskstream import names
from riskstream.clients import make_client
from riskstream.datasets import TAIWAN_CSV, TAIWAN_SHA256, verify_sha256
from riskstream.settings import Settings
from riskstream.storage import split_s3


def write_features(settings: Settings, frame: pd.DataFrame, files_per_date: int = 2) -> str:
    """Write ``frame`` as the ETL would: one partition per obs_date (column not in the files)."""
    s3 = make_client(settings, "s3")
    bucket, prefix = split_s3(names.features_location(settings))
    for obs_date, part in frame.groupby("obs_date"):
        body = part.drop(columns=["obs_date"]).reset_index(drop=True)
        for i, chunk in enumerate(_chunks(body, files_per_date)):
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), buf)
            s3.put_object(
                Bucket=bucket,
                Key=f"{prefix}/obs_date={obs_date}/part-{i:05d}.parquet",
                Body=buf.getvalue(),
            )
    return names.features_location(settings)


def _chunks(frame: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    size = -(-len(frame) // n)
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)] or [frame]


@pytest.fixture(scope="session")
def taiwan_small() -> pd.DataFrame:
    """2,000 stratified Taiwan clients as features (the ETL's shape)."""
    return read_taiwan_features(str(verify_sha256(TAIWAN_CSV, TAIWAN_SHA256)), n_rows=2000, seed=1)


@pytest.fixture
def training_settings(mlflow_settings: Settings, tmp_path: Path) -> Settings:
    """The session's MLflow server, a prefix of its own (fresh buckets and registered model)."""
    settings = mlflow_settings.with_overrides(
        prefix=f"t{uuid.uuid4().hex[:10]}", state_dir=tmp_path / "state", portfolio="taiwan"
    )
    provision(settings)
    return settings
