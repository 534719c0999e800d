"""How riskstream configures LocalStack in host mode (no server here: tests/localstack runs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.localstack import (
    LOCALSTACK_VERSION,
    REQUIREMENTS,
    LocalStackError,
    gateway,
    localstack_home,
    localstack_spec,
)
from pipeline.stack import SERVICES_BY_NAME
from riskstream.clients import make_client
from riskstream.settings import LOCALSTACK_CATALOG_PORT, Settings

pytestmark = pytest.mark.unit


def localstack(**env: str) -> Settings:
    return Settings.from_mapping({"RISKSTREAM_TARGET": "localstack", **env})


def test_the_catalog_goes_to_the_embedded_cloud_beside_localstack() -> None:
    settings = localstack(LOCALSTACK_ENDPOINT="http://127.0.0.1:4566")
    assert settings.cloud_port == LOCALSTACK_CATALOG_PORT  # LocalStack has 4566
    assert settings.catalog_in_embedded_cloud and settings.runs_embedded_cloud
    assert make_client(settings, "glue").meta.endpoint_url == "http://127.0.0.1:4567"
    assert make_client(settings, "s3").meta.endpoint_url == "http://127.0.0.1:4566"
    assert SERVICES_BY_NAME["cloud"].applies_to(settings)
    assert SERVICES_BY_NAME["localstack"].applies_to(settings)


def test_an_explicit_glue_endpoint_wins_and_no_embedded_cloud_runs() -> None:
    settings = localstack(AWS_ENDPOINT_URL_GLUE="http://127.0.0.1:4566")  # LocalStack Pro
    assert not settings.catalog_in_embedded_cloud and not settings.runs_embedded_cloud
    assert make_client(settings, "glue").meta.endpoint_url == "http://127.0.0.1:4566"
    assert not SERVICES_BY_NAME["cloud"].applies_to(settings)


def test_localstack_is_not_ours_on_the_other_targets() -> None:
    for target in ("embedded", "aws"):
        settings = Settings.from_mapping({"RISKSTREAM_TARGET": target})
        assert not SERVICES_BY_NAME["localstack"].applies_to(settings)


def test_the_gateway_is_loopback_only() -> None:
    assert gateway(localstack(LOCALSTACK_ENDPOINT="http://localhost:4599")) == ("127.0.0.1", 4599)
    for url in ("http://10.0.0.5:4566", "https://127.0.0.1:4566", "http://127.0.0.1"):
        with pytest.raises(LocalStackError, match="only on loopback"):
            gateway(localstack(LOCALSTACK_ENDPOINT=url))


def test_the_service_runs_isolated_in_host_mode_in_a_private_namespace(tmp_path: Path) -> None:
    settings = localstack(
        LOCALSTACK_ENDPOINT="http://127.0.0.1:4599",
        RISKSTREAM_CACHE_DIR=str(tmp_path / "cache"),
        RISKSTREAM_STATE_DIR=str(tmp_path / "state"),
    )
    spec = localstack_spec(settings)
    assert (spec.host, spec.port) == ("127.0.0.1", 4599)
    home = localstack_home(settings)
    assert spec.argv[:2] == [str(home.python), "-I"]  # no PYTHONPATH, no folder of ours
    assert spec.argv[-5:] == ["--host", "127.0.0.1", "--port", "4599", "--netns"]
    assert home.root.is_relative_to(tmp_path / "cache")
    assert spec.env["OVERRIDE_IN_DOCKER"] == "0" and spec.env["DNS_ADDRESS"] == "0"
    assert "glue" not in spec.env["SERVICES"].split(",")
    assert spec.env["FILESYSTEM_ROOT"].startswith(str(tmp_path / "state"))


def test_the_lock_pins_localstack_with_a_hash_for_every_package() -> None:
    text = REQUIREMENTS.read_text()
    pins = re.findall(r"^([a-z0-9_.-]+)==", text, flags=re.M)
    assert f"localstack-core=={LOCALSTACK_VERSION}" in text
    assert {"boto3", "botocore", "cbor2", "pyopenssl", "cryptography"} <= set(pins)
    blocks = re.split(r"\n(?=[a-z0-9_.-]+==)", text.strip())
    assert len(blocks) == len(pins) and all("--hash=sha256:" in b for b in blocks)
    assert "://" not in text  # no index host in the lock
