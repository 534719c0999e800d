"""Where the ETL reads and writes: S3 (through boto3 for listings and small objects) or a local
folder (tests, benchmarks). Spark itself reads and writes the data; this module only lists
partitions, deletes stale ones and moves small JSON documents (bookmarks, run reports).

Entry/IO module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileInfo:
    """One data file: its name under the partition, size and a version tag (ETag or mtime)."""

    name: str
    size: int
    version: str


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
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def fingerprint(files: list[FileInfo]) -> str:
    """A short hash of a partition's file list: changes when a file is added, removed, rewritten."""
    text = "\n".join(
        f"{f.name}\t{f.size}\t{f.version}" for f in sorted(files, key=lambda f: f.name)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Storage:
    """List, delete and put small objects under S3 URIs (given a boto3 client) or local paths."""

    def __init__(self, s3: Any | None = None) -> None:
        self.s3 = s3

    def _client(self, uri: str) -> Any:
        if self.s3 is None:
            raise ValueError(f"{uri} is an S3 URI but no S3 client was given")
        return self.s3

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
        """Remove everything under ``uri`` (a partition folder); return how many objects."""
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
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                    removed += len(keys)
            return removed
        path = Path(uri)
        if not path.exists():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

    def put_json(self, uri: str, document: Any) -> None:
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self._client(uri).put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            )
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def get_json(self, uri: str) -> Any | None:
        """The JSON document at ``uri``, or None when there is none."""
        if is_s3(uri):
            bucket, key = split_s3(uri)
            client = self._client(uri)
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                return None
            return json.loads(body)
        path = Path(uri)
        return json.loads(path.read_text()) if path.is_file() else None

    def delete(self, uri: str) -> None:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            self._client(uri).delete_object(Bucket=bucket, Key=key)
            return
        Path(uri).unlink(missing_ok=True)


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))
