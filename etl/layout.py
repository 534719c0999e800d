"""The lake's layout and its commits: raw by arrival hour, tables as versioned partitions.

- Raw objects sit under ``events/dt=YYYY-MM-DD/hr=HH/`` (the UTC hour they arrived, as Kinesis
  Data Firehose lays them out); :func:`list_arrival_partitions` lists them for the bookmarks.
- A table (curated, ETL quarantine) is a folder of partitions; each partition's data lives in a
  version folder written once and never changed: ``<table>/<key>=<value>/v=<run id>/part-*``.
  Spark writes a run's output to a local staging folder (a rename there is free); the files are
  uploaded with deterministic keys (:func:`upload_staged`); then one small JSON document per table,
  ``<table>/_manifest.json``, is replaced (one PUT, atomic on S3) to point each partition at its
  new version (:func:`commit`). The manifest is the commit point: a run that dies before it leaves
  the previous versions in place and readable, and the Glue catalog is reconciled to the manifest
  by every run (:func:`sync_catalog`). No object is ever renamed on S3.

Entry/IO module: takes a :class:`riskstream.storage.Storage` (boto3 on S3, files locally).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskstream.storage import FileInfo, Storage, is_s3, join, split_s3

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
MONTH_KEY = "event_month"
YEAR_KEY = "event_year"
# Curated tables are partitioned by event month, except the ones below. Accounts opened over
# eight years land in ~100 monthly partitions of a few dozen rows each: on the default portfolio
# they were 99 of the 135 curated files and most of the ETL's 1,550 S3 requests, and the
# features job reads the table whole anyway (one row per account, no month pruning).
TABLE_KEYS: dict[str, str] = {"account_opened": YEAR_KEY}
ARRIVAL_RE = re.compile(r"^dt=\d{4}-\d{2}-\d{2}/hr=\d{2}$")
UPLOAD_THREADS = 8


def table_key(table: str) -> str:
    """The partition key of a curated table (event month unless :data:`TABLE_KEYS` says not)."""
    return TABLE_KEYS.get(table, MONTH_KEY)


def key_value(key: str, event_month: str) -> str:
    """The partition value under ``key`` of an event in ``event_month`` (``YYYY-MM``)."""
    return event_month[:4] if key == YEAR_KEY else event_month


def list_arrival_partitions(storage: Storage, base: str) -> dict[str, list[FileInfo]]:
    """``base/dt=YYYY-MM-DD/hr=HH/<files>`` -> {``dt=YYYY-MM-DD/hr=HH``: files}; hidden skipped."""
    found: dict[str, list[FileInfo]] = {}
    if is_s3(base):
        bucket, prefix = split_s3(join(base, ""))
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        client = storage._client(base)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(prefix) :].split("/")
                if len(rest) != 3 or rest[2].startswith(("_", ".")):
                    continue
                partition = f"{rest[0]}/{rest[1]}"
                if not ARRIVAL_RE.match(partition):
                    continue
                info = FileInfo(rest[2], int(obj["Size"]), str(obj.get("ETag", "")))
                found.setdefault(partition, []).append(info)
        return found
    root = Path(base)
    for folder in sorted(root.glob("dt=*/hr=*")) if root.is_dir() else []:
        partition = f"{folder.parent.name}/{folder.name}"
        files = [
            FileInfo(p.name, p.stat().st_size, str(p.stat().st_mtime_ns))
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(("_", "."))
        ]
        if ARRIVAL_RE.match(partition) and files:
            found[partition] = files
    return found


# ---- versioned tables ------------------------------------------------------------------------


def load_manifest(storage: Storage, table: str, key: str) -> dict[str, Any]:
    """The table's manifest, or an empty one (``{"key": ..., "partitions": {}}``)."""
    found = storage.get_json(join(table, MANIFEST))
    if not found:
        return {"key": key, "partitions": {}}
    if found.get("key") != key:
        raise ValueError(
            f"{table} is partitioned by {found.get('key')!r}, not {key!r}; "
            "rerun the job with --reset to rebuild it"
        )
    return dict(found)


def stored_manifest(storage: Storage, table: str) -> dict[str, Any] | None:
    """The table's manifest as stored, whatever its key (None when there is none)."""
    found = storage.get_json(join(table, MANIFEST))
    return dict(found) if found else None


def partition_files(
    table: str, manifest: Mapping[str, Any], values: Iterable[str] | None = None
) -> list[str]:
    """URIs of the current files of the chosen partitions (all when ``values`` is None)."""
    parts = manifest["partitions"]
    chosen = sorted(parts) if values is None else sorted(set(values) & set(parts))
    return [join(table, parts[v]["location"], name) for v in chosen for name in parts[v]["files"]]


def read_table(
    spark: SparkSession,
    storage: Storage,
    table: str,
    schema: StructType,
    key: str = MONTH_KEY,
    values: Iterable[str] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> DataFrame:
    """The current rows of a table (only the partitions in ``values`` when given), by file list.

    Reading the files the manifest names (not listing the folder) is what makes a version that was
    written but not committed invisible.
    """
    from etl.spark import to_spark_uri

    manifest = manifest if manifest is not None else load_manifest(storage, table, key)
    files = partition_files(table, manifest, values)
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*[to_spark_uri(f) for f in files])


def staged_partitions(staging: Path, key: str) -> dict[str, list[Path]]:
    """Spark's local output ``staging/key=value/part-*.parquet`` -> {value: files}."""
    out: dict[str, list[Path]] = {}
    for folder in sorted(staging.glob(f"{key}=*")):
        files = sorted(p for p in folder.iterdir() if p.suffix == ".parquet")
        if files:
            out[folder.name[len(key) + 1 :]] = files
    return out


def narrow_staged(source: Path, target: Path, columns: list[str], key: str | None = None) -> None:
    """Copy staged ``name=value/*.parquet`` files keeping only ``columns`` (in that order), to
    ``key=value/`` when ``key`` is given (the staged folders' own name otherwise).

    Spark's own Parquet conventions are kept (INT96 timestamps); its schema note in the footer
    is dropped, as it names the columns removed here.
    """
    import pyarrow.parquet as pq

    for folder in sorted(p for p in source.iterdir() if p.is_dir() and "=" in p.name):
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path, columns=columns).replace_schema_metadata(None)
            name = f"{key}={folder.name.split('=', 1)[1]}" if key else folder.name
            out = target / name / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out, compression="snappy", use_deprecated_int96_timestamps=True)


def upload_staged(
    storage: Storage, staging: Path, table: str, key: str, run_id: str
) -> dict[str, dict[str, Any]]:
    """Copy staged partitions to ``table/key=value/v=run_id/part-NNNNN.parquet``.

    Returns the manifest entries for the new versions (not committed yet). Names depend only on
    the run id and the file's rank, so a retried upload rewrites the same keys.
    """
    entries: dict[str, dict[str, Any]] = {}
    jobs: list[tuple[Path, str]] = []
    for value, files in staged_partitions(staging, key).items():
        location = f"{key}={value}/v={run_id}"
        names = [f"part-{i:05d}.parquet" for i in range(len(files))]
        entries[value] = {"location": location, "files": names, "run_id": run_id}
        jobs += [(f, join(table, location, n)) for f, n in zip(files, names, strict=True)]
    put_files(storage, jobs)
    logger.info("%s: uploaded %d file(s) for %d partition(s)", table, len(jobs), len(entries))
    return entries


def put_files(storage: Storage, jobs: list[tuple[Path, str]]) -> None:
    """Upload local files to URIs (S3 through boto3, concurrently; or copy to local folders)."""
    if not jobs:
        return
    if not is_s3(jobs[0][1]):
        for source, uri in jobs:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, uri)
        return
    client = storage._client(jobs[0][1])

    def put(job: tuple[Path, str]) -> None:
        bucket, object_key = split_s3(job[1])
        client.put_object(Bucket=bucket, Key=object_key, Body=job[0].read_bytes())

    with ThreadPoolExecutor(max_workers=min(UPLOAD_THREADS, len(jobs))) as pool:
        list(pool.map(put, jobs))


def replace_files(storage: Storage, staged: Mapping[str, list[Path]]) -> None:
    """Put each folder's staged files at fixed names (``part-00000.parquet``, ...), then delete
    whatever else the folder held: one PUT replaces a file, no rename on S3."""
    jobs: list[tuple[Path, str]] = []
    stale: list[str] = []
    for folder, files in staged.items():
        keep = [f"part-{i:05d}.parquet" for i in range(len(files))]
        stale += [join(folder, f) for f in list_files(storage, folder) if f not in keep]
        jobs += [(f, join(folder, n)) for f, n in zip(files, keep, strict=True)]
    put_files(storage, jobs)
    for uri in stale:  # after the new files are in place
        storage.delete(uri)


def commit(
    storage: Storage,
    table: str,
    manifest: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]],
    run_id: str,
    replace_all: bool = False,
) -> dict[str, Any]:
    """Point the partitions in ``entries`` at their new versions: one PUT of the manifest.

    With ``replace_all`` (a rebuild) partitions not in ``entries`` are dropped from the table.
    """
    partitions = {} if replace_all else dict(manifest["partitions"])
    partitions.update({v: dict(e) for v, e in entries.items()})
    new = {"key": manifest["key"], "partitions": dict(sorted(partitions.items())), "run_id": run_id}
    storage.put_json(join(table, MANIFEST), new)
    logger.info("%s: committed %d partition version(s) (run %s)", table, len(entries), run_id)
    return new


def vacuum(storage: Storage, table: str, manifest: Mapping[str, Any]) -> int:
    """Delete partition versions the manifest no longer names (readers of old versions done)."""
    removed = 0
    for value, entry in manifest["partitions"].items():
        folder = join(table, f"{manifest['key']}={value}")
        current = entry["location"].rsplit("/", 1)[-1]
        for version in _versions(storage, folder):
            if version != current:
                removed += storage.delete_prefix(join(folder, version))
    return removed


def list_files(storage: Storage, folder: str) -> list[str]:
    """Names of the files directly under ``folder`` (none when it does not exist)."""
    if is_s3(folder):
        bucket, prefix = split_s3(folder)
        answer = storage._client(folder).list_objects_v2(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/", Delimiter="/"
        )
        return sorted(o["Key"].rsplit("/", 1)[-1] for o in answer.get("Contents", []))
    path = Path(folder)
    return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []


def _versions(storage: Storage, folder: str) -> list[str]:
    if is_s3(folder):
        bucket, prefix = split_s3(folder)
        answer = storage._client(folder).list_objects_v2(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/", Delimiter="/"
        )
        names = [
            p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in answer.get("CommonPrefixes", [])
        ]
    else:
        names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(n for n in names if n.startswith("v="))


# ---- the Glue catalog follows the manifest -------------------------------------------------


def sync_catalog(
    glue: Any,
    database: str,
    name: str,
    table: str,
    schema: StructType,
    manifest: Mapping[str, Any],
    description: str,
) -> dict[str, int]:
    """Make the catalog table's partitions point where the manifest points (add, move, drop)."""
    from riskstream.storage import (
        CatalogTable,
        glue_columns,
        register_table,
        storage_descriptor,
        to_s3,
    )

    key = manifest["key"]
    columns = glue_columns(schema, skip=[key])
    current: dict[str, str] = {}
    try:
        glue.get_table(DatabaseName=database, Name=name)
        exists = True
    except glue.exceptions.EntityNotFoundException:
        exists = False
    if exists:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
        for page in pages:
            for p in page.get("Partitions", []):
                current[p["Values"][0]] = p["StorageDescriptor"]["Location"]
    base = to_s3(table).rstrip("/")
    wanted = {v: join(base, e["location"]) + "/" for v, e in manifest["partitions"].items()}
    added = [v for v in wanted if v not in current]
    moved = [v for v in wanted if v in current and current[v] != wanted[v]]
    dropped = [v for v in current if v not in wanted]
    if exists and not (added or moved or dropped):
        return {"added": 0, "moved": 0, "dropped": 0}  # in step: no catalog write at all
    register_table(glue, CatalogTable(database, name, table, schema, key, description))
    for start in range(0, len(added), 100):
        glue.batch_create_partition(
            DatabaseName=database,
            TableName=name,
            PartitionInputList=[
                {"Values": [v], "StorageDescriptor": storage_descriptor(wanted[v], columns)}
                for v in added[start : start + 100]
            ],
        )
    for v in moved:
        glue.update_partition(
            DatabaseName=database,
            TableName=name,
            PartitionValueList=[v],
            PartitionInput={
                "Values": [v],
                "StorageDescriptor": storage_descriptor(wanted[v], columns),
            },
        )
    for start in range(0, len(dropped), 25):
        glue.batch_delete_partition(
            DatabaseName=database,
            TableName=name,
            PartitionsToDelete=[{"Values": [v]} for v in dropped[start : start + 25]],
        )
    return {"added": len(added), "moved": len(moved), "dropped": len(dropped)}
