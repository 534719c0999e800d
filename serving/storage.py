"""S3 and Glue I/O for serving: read feature partitions, write score partitions, keep the catalog.

Parquet goes through pyarrow's S3FileSystem pointed at the configured endpoint (moto, LocalStack
or AWS); listing, deleting and the catalog go through boto3 clients from the factory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from riskstream.clients import make_client
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

SCORES_TABLE = "scores"
SCORES_PREFIX = "scores"
MONITORING_PREFIX = "monitoring"
FEATURES_PREFIX = "features"
_PART_RE = re.compile(r"=(\d{4}-\d{2}-\d{2})/?$")


def s3_filesystem(settings: Settings) -> Any:
    """A pyarrow S3FileSystem for the configured cloud."""
    from pyarrow import fs

    kwargs: dict[str, Any] = {"region": settings.region}
    endpoint = settings.endpoint_for("s3")
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or endpoint
        kwargs["scheme"] = parsed.scheme or "http"
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        kwargs["access_key"] = settings.aws_access_key_id
        kwargs["secret_key"] = settings.aws_secret_access_key
    return fs.S3FileSystem(**kwargs)


def list_partitions(settings: Settings, bucket: str, prefix: str, key: str) -> list[dt.date]:
    """Dates of the ``{prefix}/{key}=YYYY-MM-DD/`` partitions that hold at least one object."""
    s3 = make_client(settings, "s3")
    out: set[dt.date] = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/{key}=", Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            match = _PART_RE.search(common["Prefix"])
            if match:
                out.add(dt.date.fromisoformat(match.group(1)))
    return sorted(out)


def feature_partitions(settings: Settings) -> list[dt.date]:
    return list_partitions(settings, settings.bucket("features"), FEATURES_PREFIX, "obs_date")


def score_partitions(settings: Settings) -> list[dt.date]:
    return list_partitions(settings, settings.bucket("scores"), SCORES_PREFIX, "score_date")


def read_parquet_prefix(settings: Settings, bucket: str, prefix: str) -> pa.Table:
    """Every Parquet file under ``s3://bucket/prefix/`` as one table (no partition columns)."""
    s3 = make_client(settings, "s3")
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".parquet")
    ]
    if not keys:
        raise FileNotFoundError(f"no Parquet files under s3://{bucket}/{prefix}")
    dataset = ds.dataset(
        [f"{bucket}/{k}" for k in sorted(keys)],
        filesystem=s3_filesystem(settings),
        format="parquet",
    )
    return dataset.to_table()


def read_features(settings: Settings, obs_date: dt.date) -> pa.Table:
    return read_parquet_prefix(
        settings, settings.bucket("features"), f"{FEATURES_PREFIX}/obs_date={obs_date.isoformat()}/"
    )


def read_scores(settings: Settings, score_date: dt.date) -> pa.Table:
    return read_parquet_prefix(
        settings, settings.bucket("scores"), f"{SCORES_PREFIX}/score_date={score_date.isoformat()}/"
    )


def delete_prefix(settings: Settings, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; return how many went."""
    s3 = make_client(settings, "s3")
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            deleted += len(objects)
    return deleted


def write_scores(settings: Settings, table: pa.Table, score_date: dt.date) -> str:
    """Replace the ``score_date`` partition with ``table``; return its S3 URI."""
    bucket = settings.bucket("scores")
    prefix = f"{SCORES_PREFIX}/score_date={score_date.isoformat()}/"
    removed = delete_prefix(settings, bucket, prefix)
    if removed:
        logger.info("replacing s3://%s/%s (%d old objects removed)", bucket, prefix, removed)
    pq.write_table(
        table,
        f"{bucket}/{prefix}part-00000.parquet",
        filesystem=s3_filesystem(settings),
        compression="snappy",
    )
    return f"s3://{bucket}/{prefix}"


def write_json(settings: Settings, bucket: str, key: str, body: dict[str, Any]) -> str:
    s3 = make_client(settings, "s3")
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body, indent=2, default=str).encode(),
        ContentType="application/json",
    )
    return f"s3://{bucket}/{key}"


def monitoring_key(score_date: dt.date) -> str:
    return f"{MONITORING_PREFIX}/score_date={score_date.isoformat()}/psi.json"


def read_monitoring(settings: Settings) -> list[dict[str, Any]]:
    """Every stored PSI report, oldest first."""
    s3 = make_client(settings, "s3")
    bucket = settings.bucket("scores")
    out = []
    for day in list_partitions(settings, bucket, MONITORING_PREFIX, "score_date"):
        try:
            body = s3.get_object(Bucket=bucket, Key=monitoring_key(day))["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        out.append(json.loads(body))
    return out


# ---- Glue catalog ------------------------------------------------------------------------------
_GLUE_TYPES = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.float64(): "double",
    pa.float32(): "float",
    pa.int64(): "bigint",
    pa.int32(): "int",
    pa.int16(): "smallint",
    pa.int8(): "tinyint",
    pa.bool_(): "boolean",
    pa.date32(): "date",
}


def glue_type(arrow_type: pa.DataType) -> str:
    if arrow_type in _GLUE_TYPES:
        return _GLUE_TYPES[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    raise ValueError(f"no Glue type for Arrow type {arrow_type}")


def register_scores_partition(settings: Settings, schema: pa.Schema, score_date: dt.date) -> None:
    """Create or update the ``scores`` table and its ``score_date`` partition (idempotent)."""
    glue = make_client(settings, "glue")
    bucket = settings.bucket("scores")
    location = f"s3://{bucket}/{SCORES_PREFIX}/"
    columns = [{"Name": f.name, "Type": glue_type(f.type)} for f in schema]
    storage = {
        "Columns": columns,
        "Location": location,
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        },
    }
    table_input = {
        "Name": SCORES_TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "StorageDescriptor": storage,
        "PartitionKeys": [{"Name": "score_date", "Type": "date"}],
    }
    try:
        glue.create_table(DatabaseName=settings.glue_database, TableInput=table_input)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=settings.glue_database, TableInput=table_input)
    value = score_date.isoformat()
    part_storage = {**storage, "Location": f"{location}score_date={value}/"}
    try:
        glue.create_partition(
            DatabaseName=settings.glue_database,
            TableName=SCORES_TABLE,
            PartitionInput={"Values": [value], "StorageDescriptor": part_storage},
        )
    except glue.exceptions.AlreadyExistsException:
        glue.update_partition(
            DatabaseName=settings.glue_database,
            TableName=SCORES_TABLE,
            PartitionValueList=[value],
            PartitionInput={"Values": [value], "StorageDescriptor": part_storage},
        )
