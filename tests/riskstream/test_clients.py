from __future__ import annotations

import pytest

from riskstream.clients import make_client
from riskstream.settings import Settings


@pytest.mark.unit
def test_embedded_client_uses_the_local_endpoint() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_CLOUD_PORT": "4777"})
    client = make_client(settings, "s3")
    assert client.meta.endpoint_url == "http://127.0.0.1:4777"
    assert client.meta.region_name == "us-east-1"


@pytest.mark.unit
def test_per_service_override_wins() -> None:
    settings = Settings.from_mapping({"AWS_ENDPOINT_URL_KINESIS": "http://127.0.0.1:4999"})
    assert make_client(settings, "kinesis").meta.endpoint_url == "http://127.0.0.1:4999"
    assert make_client(settings, "s3").meta.endpoint_url == "http://127.0.0.1:4566"


@pytest.mark.unit
def test_localstack_client_uses_localstack_client_endpoints() -> None:
    settings = Settings.from_mapping(
        {"RISKSTREAM_TARGET": "localstack", "LOCALSTACK_ENDPOINT": "http://localhost:4510"}
    )
    client = make_client(settings, "dynamodb")
    assert client.meta.endpoint_url == "http://localhost:4510"


@pytest.mark.unit
def test_aws_client_has_no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_GLUE", raising=False)
    settings = Settings.from_mapping({"RISKSTREAM_TARGET": "aws", "AWS_REGION": "eu-west-1"})
    client = make_client(settings, "glue")
    assert client.meta.endpoint_url == "https://glue.eu-west-1.amazonaws.com"


@pytest.mark.unit
def test_aws_target_honours_the_standard_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 reads AWS_ENDPOINT_URL natively; our factory must not get in its way.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4321")
    settings = Settings.from_mapping({"RISKSTREAM_TARGET": "aws"})
    assert make_client(settings, "s3").meta.endpoint_url == "http://127.0.0.1:4321"


@pytest.mark.integration
def test_embedded_client_talks_to_a_real_server(cloud_settings: Settings) -> None:
    s3 = make_client(cloud_settings, "s3")
    s3.create_bucket(Bucket="rstest-client-check")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "rstest-client-check" in names
