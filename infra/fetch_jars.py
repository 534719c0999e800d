"""Fetch Spark's S3A connector jars through pip (run by infra/bootstrap.sh; stdlib plus pip).

Maven Central may not be reachable, so the jars come from the sdist of sagemaker-pyspark on the
Python package index, which carries hadoop-aws 3.3.1 and the matching AWS SDK bundle under
deps/jars/. ``pip download`` fetches the sdist from whatever index the user configured for pip
(pip.conf, ``PIP_INDEX_URL``; ``UV_DEFAULT_INDEX`` / ``UV_INDEX_URL`` are passed on as
``--index-url`` when pip has none of its own), so no host is named here. The download is checked
against a pinned sha256 and only the two jars are extracted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

PROJECT = "sagemaker-pyspark"
VERSION = "1.4.5"
SDIST = "sagemaker_pyspark-1.4.5.tar.gz"
SDIST_SHA256 = "05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb"
JARS = {
    "hadoop-aws-3.3.1.jar": "sagemaker_pyspark-1.4.5/deps/jars/hadoop-aws-3.3.1.jar",
    "aws-java-sdk-bundle-1.11.901.jar": (
        "sagemaker_pyspark-1.4.5/deps/jars/aws-java-sdk-bundle-1.11.901.jar"
    ),
}


class FetchError(RuntimeError):
    """The jars could not be fetched; the message says what failed and what to do."""


def pip_download_argv(python: str, dest: Path, env: Mapping[str, str]) -> list[str]:
    """``pip download`` of the sdist alone (no dependencies: it pins an old pyspark)."""
    argv = [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        PROJECT,
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        f"{PROJECT}=={VERSION}",
    ]
    uv_index = env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")
    if uv_index and not env.get("PIP_INDEX_URL"):
        argv[4:4] = ["--index-url", uv_index]
    return argv


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(archive: Path, expected: str = SDIST_SHA256) -> None:
    actual = sha256_of(archive)
    if actual != expected:
        raise FetchError(f"sha256 of {archive.name} is {actual}, expected {expected}")


def extract(archive: Path, target: Path, members: Mapping[str, str] = JARS) -> None:
    """Copy only ``members`` (jar name -> path inside the archive) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for name, member in members.items():
            try:
                source = tar.extractfile(member)
            except KeyError:
                source = None
            if source is None:
                raise FetchError(f"{member} missing from {archive.name}")
            partial = target / (name + ".part")
            with open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
            partial.replace(target / name)


def download_sdist(dest: Path) -> Path:
    if importlib.util.find_spec("pip") is None:
        raise FetchError(
            f"pip is not installed in {sys.prefix}; add it with `{sys.executable} -m ensurepip`"
        )
    argv = pip_download_argv(sys.executable, dest, os.environ)
    result = subprocess.run(argv, check=False)
    archive = dest / SDIST
    if result.returncode != 0 or not archive.is_file():
        raise FetchError(
            f"`{' '.join(argv[1:])}` failed (exit {result.returncode}); pip's messages are above. "
            "Check that pip reaches your package index (pip config list; PIP_INDEX_URL)."
        )
    return archive


def main(target: Path) -> int:
    if all((target / name).is_file() for name in JARS):
        return 0
    print(
        f"fetching S3A jars: pip download {PROJECT}=={VERSION} (about 180 MB, once)",
        file=sys.stderr,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = download_sdist(Path(tmp))
            verify(archive)
            extract(archive, target)
    except FetchError as exc:
        print(f"fetch_jars: {exc}", file=sys.stderr)
        return 1
    print(f"S3A jars in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".jars")))
