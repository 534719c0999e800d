"""The one way to the object store and the catalog: S3 URIs, listing, prefix deletes, JSON
objects, Parquet through Arrow, and Glue table/partition registration for Spark or Arrow schemas.

I/O module. It takes its boto3 clients as arguments (build them with
:func:`riskstream.clients.make_client`) and imports pyarrow only inside the functions that need it,
so importing the foundation stays light. Local folders work wherever an ``s3://`` URI does
(tests and benchmarks use them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_DATE_PART_RE = re.compile(r"=(\d{4}-\d{2}-\d{2})/?$")


class StorageError(ValueError):
    """A location is unusable; the message names it and says what to do."""


# ---- URIs ---------------------------------------------------------------------------------------
def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def join(base: str, *parts: str) -> str:
    """Join URI or path segments with single slashes."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (``bucket``, ``some/key``)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise StorageError(f"{uri!r} is not an s3:// URI; use e.g. s3://<prefix>-features/features")
    return parsed.netloc, parsed.path.lstrip("/")


def to_s3(uri: str) -> str:
    """Catalog locations use ``s3://`` whatever scheme Spark used."""
    return "s3://" + uri.split("://", 1)[1] if "://" in uri else uri


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


# ---- files and partitions ----------------------------------------------------------------------
@dataclass(frozen=True)
class FileInfo:
    """One data file: its name under the partition, size and a version tag (ETag or mtime)."""

    name: str
    size: int
    version: str


def fingerprint(files: list[FileInfo]) -> str:
    """A short hash of a partition's file list: changes when a file is added, removed, rewritten."""
    text = "\n".join(
        f"{f.name}\t{f.size}\t{f.version}" for f in sorted(files, key=lambda f: f.name)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Storage:
    """List, read and write under S3 URIs (given a boto3 S3 client) or local paths."""

    def __init__(self, s3: Any | None = None) -> None:
        self.s3 = s3

    def _client(self, uri: str) -> Any:
        if self.s3 is None:
            raise StorageError(f"{uri} is an S3 URI but no S3 client was given")
        return self.s3

    def list_objects(self, uri: str, suffix: str = "") -> list[dict[str, Any]]:
        """Every object under the folder ``uri`` (key, size, ETag), hidden files skipped."""
        bucket, prefix = split_s3(uri)
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        out = []
        pages = self._client(uri).get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if key.endswith(suffix) and not _hidden(key.rsplit("/", 1)[-1]):
                    out.append(obj)
        return sorted(out, key=lambda o: str(o["Key"]))

    def list_partitions(self, base: str, key: str = "dt") -> dict[str, list[FileInfo]]:
        """``base/key=value/<files>`` -> {value: files}; hidden files (``_``, ``.``) skipped."""
        found: dict[str, list[FileInfo]] = {}
        if is_s3(base):
            bucket, prefix = split_s3(join(base, ""))
            prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
            pages = self._client(base).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rest = obj["Key"][len(prefix) :].split("/")
                    if len(rest) != 2 or not rest[0].startswith(f"{key}=") or _hidden(rest[1]):
                        continue
                    info = FileInfo(rest[1], int(obj["Size"]), str(obj.get("ETag", "")))
                    found.setdefault(rest[0][len(key) + 1 :], []).append(info)
            return found
        root = Path(base)
        if not root.is_dir():
            return found
        for folder in sorted(root.glob(f"{key}=*")):
            files = [
                FileInfo(p.name, p.stat().st_size, str(p.stat().st_mtime_ns))
                for p in sorted(folder.iterdir())
                if p.is_file() and not _hidden(p.name)
            ]
            if files:
                found[folder.name[len(key) + 1 :]] = files
        return found

    def partition_dates(self, base: str, key: str) -> list[dt.date]:
        """Dates of the ``base/key=YYYY-MM-DD/`` partitions that hold at least one object."""
        out: set[dt.date] = set()
        if not is_s3(base):
            return sorted(dt.date.fromisoformat(v) for v in self.list_partitions(base, key))
        bucket, prefix = split_s3(base)
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        pages = self._client(base).get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=f"{prefix}{key}=", Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                match = _DATE_PART_RE.search(common["Prefix"])
                if match:
                    out.add(dt.date.fromisoformat(match.group(1)))
        return sorted(out)

    def exists(self, uri: str) -> bool:
        """Whether anything (a file or a non-empty folder) is at ``uri``."""
        if is_s3(uri):
            bucket, prefix = split_s3(uri)
            answer = self._client(uri).list_objects_v2(
                Bucket=bucket, Prefix=prefix.rstrip("/") + "/", MaxKeys=1
            )
            return bool(answer.get("KeyCount", 0))
        path = Path(uri)
        return path.is_file() or (path.is_dir() and any(path.iterdir()))

    def delete_prefix(self, uri: str) -> int:
        """Remove everything under ``uri`` (a folder); return how many objects went."""
        if is_s3(uri):
            bucket, prefix = split_s3(uri)
            prefix = prefix.rstrip("/") + "/"
            client = self._client(uri)
            removed = 0
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    removed += len(keys)
            return removed
        path = Path(uri)
        if not path.exists():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

    def put_bytes(self, uri: str, body: bytes, content_type: str | None = None) -> str:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {"ContentType": content_type} if content_type else {}
            self._client(uri).put_object(Bucket=bucket, Key=key, Body=body, **extra)
            return uri
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return uri

    def get_bytes(self, uri: str) -> bytes | None:
        """The object at ``uri``, or None when there is none."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            client = self._client(uri)
            try:
                return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            except client.exceptions.NoSuchKey:
                return None
        path = Path(uri)
        return path.read_bytes() if path.is_file() else None

    def put_json(self, uri: str, document: Any) -> str:
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(uri, body, "application/json")

    def get_json(self, uri: str) -> Any | None:
        """The JSON document at ``uri``, or None when there is none."""
        body = self.get_bytes(uri)
        return None if body is None else json.loads(body)

    def delete(self, uri: str) -> None:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self._client(uri).delete_object(Bucket=bucket, Key=key)
            return
        Path(uri).unlink(missing_ok=True)


# ---- Parquet through Arrow ---------------------------------------------------------------------
def arrow_s3_filesystem(
    region: str,
    endpoint: str | None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A pyarrow S3FileSystem for one cloud (``endpoint`` None on AWS)."""
    from pyarrow import fs

    kwargs: dict[str, Any] = {"region": region}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or endpoint
        kwargs["scheme"] = parsed.scheme or "http"
    if access_key and secret_key:
        kwargs["access_key"] = access_key
        kwargs["secret_key"] = secret_key
    return fs.S3FileSystem(**kwargs)


def read_parquet(storage: Storage, filesystem: Any, uri: str) -> Any:
    """Every Parquet file under the folder ``uri`` as one Arrow table (no partition columns)."""
    import pyarrow.dataset as ds

    objects = storage.list_objects(uri, suffix=".parquet")
    if not objects:
        raise FileNotFoundError(f"no Parquet files under {uri}")
    bucket, _ = split_s3(uri)
    paths = [f"{bucket}/{o['Key']}" for o in objects]
    return ds.dataset(paths, filesystem=filesystem, format="parquet").to_table()


def write_parquet(storage: Storage, filesystem: Any, table: Any, uri: str) -> str:
    """Replace the folder ``uri`` with one Parquet file holding ``table``; return the folder."""
    import pyarrow.parquet as pq

    removed = storage.delete_prefix(uri)
    if removed:
        logger.info("replacing %s (%d old objects removed)", uri, removed)
    bucket, prefix = split_s3(uri)
    path = f"{bucket}/{prefix.strip('/')}/part-00000.parquet"
    pq.write_table(table, path, filesystem=filesystem, compression="snappy")
    return join(uri, "")


# ---- the Glue catalog ---------------------------------------------------------------------------
def glue_columns(schema: Any, skip: Iterable[str] = ()) -> list[dict[str, str]]:
    """Glue columns (Hive type names) for a Spark ``StructType`` or an Arrow ``Schema``."""
    skipped = set(skip)
    if hasattr(schema, "fields") and hasattr(schema, "simpleString"):  # Spark
        pairs = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    else:  # Arrow
        pairs = [(f.name, arrow_glue_type(f.type)) for f in schema]
    return [{"Name": name, "Type": kind} for name, kind in pairs if name not in skipped]


def arrow_glue_type(arrow_type: Any) -> str:
    import pyarrow as pa

    simple = {
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
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    raise StorageError(f"no Glue type for Arrow type {arrow_type}")


def storage_descriptor(location: str, columns: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {}},
    }


@dataclass(frozen=True)
class CatalogTable:
    """A partitioned Parquet table as the Glue catalog knows it: where it is listed, where its
    files live, its schema (Arrow or Spark) and its partition column."""

    database: str
    name: str
    location: str
    schema: Any
    partition_key: str
    description: str = ""
    partition_type: str = "string"


def register_table(glue: Any, table: CatalogTable) -> str:
    """Create or update one partitioned Parquet table; return ``created`` or ``updated``."""
    database, name = table.database, table.name
    location = to_s3(table.location).rstrip("/") + "/"
    table_input = {
        "Name": name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "StorageDescriptor": storage_descriptor(
            location, glue_columns(table.schema, skip=[table.partition_key])
        ),
        "PartitionKeys": [{"Name": table.partition_key, "Type": table.partition_type}],
    }
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=table_input)
        logger.info("catalog: created table %s.%s at %s", database, name, location)
        return "created"
    glue.update_table(DatabaseName=database, TableInput=table_input)
    logger.info("catalog: updated table %s.%s", database, name)
    return "updated"


def register_partitions(
    glue: Any, table: CatalogTable, values: Iterable[str], replace: bool = False
) -> int:
    """Add the partitions not in the catalog yet; with ``replace``, also rewrite existing ones
    (their location or schema changed). Returns how many were added."""
    database, name, partition_key = table.database, table.name, table.partition_key
    base = to_s3(table.location).rstrip("/")
    columns = glue_columns(table.schema, skip=[partition_key])
    inputs = [
        {
            "Values": [value],
            "StorageDescriptor": storage_descriptor(
                join(base, f"{partition_key}={value}") + "/", columns
            ),
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
        if replace:
            existing = {e["PartitionValues"][0] for e in errors}
            for item in batch:
                if item["Values"][0] in existing:
                    glue.update_partition(
                        DatabaseName=database,
                        TableName=name,
                        PartitionValueList=item["Values"],
                        PartitionInput=item,
                    )
    logger.info("catalog: %s.%s has %d new partition(s)", database, name, added)
    return added
