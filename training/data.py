"""Read a feature-table version from S3 and describe it to MLflow (I/O).

A version is everything under one S3 prefix: the whole table
(``s3://{prefix}-features/features``) or one observation date
(``.../features/obs_date=YYYY-MM-DD``). Its digest hashes the object keys, ETags and sizes, so a
later task can tell whether the data changed under it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import Storage, split_s3
from training.dataset import TrainingDataError

logger = logging.getLogger(__name__)

_OBS_DATE_RE = re.compile(r"(?:^|/)obs_date=(\d{4}-\d{2}-\d{2})(?:/|$)")


@dataclass(frozen=True)
class FeatureTable:
    uri: str
    frame: pd.DataFrame
    keys: tuple[str, ...]
    digest: str


def default_features_uri(settings: Settings) -> str:
    """This portfolio's feature table (every observation date)."""
    return names.features_location(settings)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, ``some/prefix``)."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise TrainingDataError(
            f"features URI {uri!r} is not an s3:// URI; use e.g. s3://<prefix>-features/features"
        )
    bucket, prefix = split_s3(uri)
    return bucket, prefix.strip("/")


def list_parquet(settings: Settings, uri: str) -> list[dict[str, object]]:
    """The Parquet objects under ``uri`` (skipping Spark's ``_SUCCESS`` and hidden files)."""
    bucket, _ = parse_s3_uri(uri)
    try:
        return Storage(make_client(settings, "s3")).list_objects(uri, suffix=".parquet")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise TrainingDataError(
                f"bucket {bucket!r} of {uri} does not exist; run `riskstream provision`"
            ) from None
        raise


def read_feature_table(settings: Settings, uri: str | None = None) -> FeatureTable:
    """Read every Parquet file under ``uri`` into one DataFrame (``obs_date`` from the path when
    the files do not carry it, as Spark's partitioned writes do)."""
    uri = (uri or default_features_uri(settings)).rstrip("/")
    objects = list_parquet(settings, uri)
    if not objects:
        raise TrainingDataError(
            f"no Parquet files under {uri}: the feature table is empty or missing; build it "
            "with the features job first (or pass --features-uri)"
        )
    bucket, _ = parse_s3_uri(uri)
    s3 = make_client(settings, "s3")
    frames = []
    for obj in objects:
        key = str(obj["Key"])
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        frame = pq.read_table(io.BytesIO(body)).to_pandas()
        match = _OBS_DATE_RE.search(key)
        if "obs_date" not in frame.columns and match:
            frame["obs_date"] = dt.date.fromisoformat(match.group(1))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = normalise(frame)
    # A fixed row order, whatever order Spark wrote the rows in: the split and every fit that
    # follows depend on it, and the same data must give the same model.
    key = [c for c in ("obs_date", "account_id") if c in frame.columns]
    if key:
        frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
    hasher = hashlib.sha256()
    for obj in objects:
        hasher.update(f"{obj['Key']}:{obj.get('ETag', '')}:{obj.get('Size', '')}\n".encode())
    digest = hasher.hexdigest()[:16]
    logger.info(
        "read %d rows from %d file(s) under %s (digest %s)", len(frame), len(objects), uri, digest
    )
    return FeatureTable(uri, frame, tuple(str(o["Key"]) for o in objects), digest)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ``datetime.date``; string columns as object with NaN for missing (what sklearn's
    imputers expect); labels as nullable ints."""
    out = frame.copy()
    if "obs_date" in out.columns:
        out["obs_date"] = pd.to_datetime(out["obs_date"]).dt.date
    for name in out.columns:
        if name in ("obs_date",):
            continue
        dtype = out[name].dtype
        if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            values = out[name].astype(object)
            out[name] = values.where(values.notna(), np.nan)
    return out


def read_oracle(settings: Settings) -> pd.DataFrame | None:
    """The synthetic generator's true PDs, when that portfolio was produced (else None)."""
    s3 = make_client(settings, "s3")
    try:
        bucket, key = split_s3(names.oracle_location(settings))
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise
    oracle = pq.read_table(io.BytesIO(body)).to_pandas()
    if not {"account_id", "true_pd"} <= set(oracle.columns):
        raise TrainingDataError(
            f"{names.oracle_location(settings)} lacks account_id/true_pd; "
            f"columns are {list(oracle.columns)}"
        )
    return oracle


def log_dataset_inputs(table: FeatureTable, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Log the train and test parts as MLflow dataset inputs of the active run."""
    import warnings

    import mlflow

    for context, part in (("training", train), ("test", test)):
        with warnings.catch_warnings():
            # The integer label in the dataset schema is expected; the hint is for model inputs.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            dataset = mlflow.data.from_pandas(
                part, source=table.uri, targets="label", name=f"features@{table.digest}"
            )
            mlflow.log_input(dataset, context=context)
