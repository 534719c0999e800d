"""The S3A jar fetcher without the network: the pip command, the checksum, the two-member copy."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from infra import fetch_jars

pytestmark = pytest.mark.unit


def test_pip_downloads_the_sdist_alone_from_the_configured_index(tmp_path: Path) -> None:
    argv = fetch_jars.pip_download_argv("py", tmp_path, {})
    assert argv[:4] == ["py", "-m", "pip", "download"]
    assert "--no-deps" in argv
    assert argv[argv.index("--no-binary") + 1] == "sagemaker-pyspark"
    assert argv[argv.index("--dest") + 1] == str(tmp_path)
    assert argv[-1] == "sagemaker-pyspark==1.4.5"
    assert not any("://" in a for a in argv)  # the index is pip's own configuration
    uv = fetch_jars.pip_download_argv("py", tmp_path, {"UV_INDEX_URL": "https://mirror/simple"})
    assert uv[4:6] == ["--index-url", "https://mirror/simple"]
    pip_wins = {"UV_DEFAULT_INDEX": "https://a/simple", "PIP_INDEX_URL": "https://b/simple"}
    assert "--index-url" not in fetch_jars.pip_download_argv("py", tmp_path, pip_wins)


def _sdist(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_copies_only_the_two_jars(tmp_path: Path) -> None:
    archive = _sdist(
        tmp_path / fetch_jars.SDIST,
        {
            **{member: name.encode() for name, member in fetch_jars.JARS.items()},
            "sagemaker_pyspark-1.4.5/deps/jars/other.jar": b"x",
        },
    )
    target = tmp_path / "jars"
    fetch_jars.extract(archive, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(fetch_jars.JARS)
    for name in fetch_jars.JARS:
        assert (target / name).read_bytes() == name.encode()


def test_a_missing_member_or_a_wrong_checksum_is_named(tmp_path: Path) -> None:
    archive = _sdist(tmp_path / fetch_jars.SDIST, {"sagemaker_pyspark-1.4.5/setup.py": b""})
    with pytest.raises(fetch_jars.FetchError, match=r"hadoop-aws-3\.3\.1\.jar missing"):
        fetch_jars.extract(archive, tmp_path / "jars")
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(
        fetch_jars.FetchError, match=f"is {actual}, expected {fetch_jars.SDIST_SHA256}"
    ):
        fetch_jars.verify(archive)
    fetch_jars.verify(archive, expected=actual)


def test_nothing_is_fetched_when_both_jars_are_there(tmp_path: Path) -> None:
    for name in fetch_jars.JARS:
        (tmp_path / name).write_bytes(b"jar")
    assert fetch_jars.main(tmp_path) == 0
