"""Keep the Glue Data Catalog current: one table per curated dataset and for the features, with
its S3 location, Parquet storage descriptor, schema and partitions.

Entry/IO module: takes a boto3 Glue client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pyspark.sql import types as T

from etl.storage import join

logger = logging.getLogger(__name__)

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def glue_columns(schema: T.StructType, skip: Iterable[str] = ()) -> list[dict[str, str]]:
    """Spark fields -> Glue columns (Hive type names: string, double, int, date, map<...>)."""
    skipped = set(skip)
    return [
        {"Name": f.name, "Type": f.dataType.simpleString()}
        for f in schema.fields
        if f.name not in skipped
    ]


def to_s3(uri: str) -> str:
    """Catalog locations use ``s3://`` whatever scheme Spark used."""
    return "s3://" + uri.split("://", 1)[1] if "://" in uri else uri


def _storage(location: str, columns: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {}},
    }


def register_table(
    glue: Any,
    database: str,
    name: str,
    location: str,
    schema: T.StructType,
    partition_key: str,
    description: str,
) -> str:
    """Create or update one table; return ``created`` or ``updated``."""
    location = to_s3(location).rstrip("/") + "/"
    table = {
        "Name": name,
        "Description": description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "StorageDescriptor": _storage(location, glue_columns(schema, skip=[partition_key])),
        "PartitionKeys": [{"Name": partition_key, "Type": "string"}],
    }
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=table)
        logger.info("catalog: created table %s.%s at %s", database, name, location)
        return "created"
    glue.update_table(DatabaseName=database, TableInput=table)
    logger.info("catalog: updated table %s.%s", database, name)
    return "updated"


def register_partitions(
    glue: Any,
    database: str,
    name: str,
    location: str,
    schema: T.StructType,
    partition_key: str,
    values: Iterable[str],
) -> int:
    """Add the partitions that are not in the catalog yet (existing ones keep their entry)."""
    base = to_s3(location).rstrip("/")
    columns = glue_columns(schema, skip=[partition_key])
    inputs = [
        {
            "Values": [value],
            "StorageDescriptor": _storage(join(base, f"{partition_key}={value}") + "/", columns),
        }
        for value in sorted(set(values))
    ]
    added = 0
    for start in range(0, len(inputs), 100):  # the API takes at most 100 per call
        batch = inputs[start : start + 100]
        answer = glue.batch_create_partition(
            DatabaseName=database, TableName=name, PartitionInputList=batch
        )
        errors = answer.get("Errors", [])
        real = [e for e in errors if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"]
        if real:
            raise RuntimeError(f"catalog: adding partitions to {database}.{name} failed: {real}")
        added += len(batch) - len(errors)
    logger.info("catalog: %s.%s has %d new partition(s)", database, name, added)
    return added


def drop_partitions(glue: Any, database: str, name: str, values: Iterable[str]) -> None:
    """Remove partitions that no longer hold data (a rerun emptied them)."""
    wanted = [{"Values": [v]} for v in sorted(set(values))]
    for start in range(0, len(wanted), 25):
        glue.batch_delete_partition(
            DatabaseName=database, TableName=name, PartitionsToDelete=wanted[start : start + 25]
        )
