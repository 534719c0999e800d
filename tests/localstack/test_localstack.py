"""The pipeline on LocalStack community in host mode (RISKSTREAM_TARGET=localstack, no Docker).

LocalStack starts once for the module (infra/localstack.py: its own environment, installed once
per lock into the cache dir; the first run of a fresh machine spends about half a minute there),
on a free loopback port, with its Glue catalog in an embedded cloud on another. Then: ingestion
(the producer into LocalStack's Kinesis), landing (the consumer into its S3, checkpoints in its
DynamoDB), both ETL jobs on its S3 through Spark's S3A, the online table in its DynamoDB, and a
Step Functions execution of the test machine whose Tasks the step worker answers through its SQS.
Every socket LocalStack and its engines open is on loopback or inside its private namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cloud import cloud_service
from infra.localstack import glue_refusal, localstack_service, start_localstack
from infra.provision import provision
from infra.services import free_port, process_tree
from infra.spark_cluster import QUICK_JIT
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.sockets import listeners, listening_inodes

pytestmark = pytest.mark.integration

ACCOUNTS = 30  # tiny: the point is the cloud, not the volume


@pytest.fixture(scope="module")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """LocalStack up (and its catalog, an in-memory embedded cloud), provisioned; its settings."""
    state = tmp_path_factory.mktemp("localstack-state")
    settings = Settings.from_mapping(
        {
            **{k: v for k, v in os.environ.items() if k == "RISKSTREAM_CACHE_DIR"},
            "RISKSTREAM_TARGET": "localstack",
            "LOCALSTACK_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "RISKSTREAM_STATE_DIR": str(state),
            "RISKSTREAM_PREFIX": f"ls{uuid.uuid4().hex[:8]}",
        }
    )
    try:
        start_localstack(settings, argparse.Namespace(ephemeral=True))
        provision(settings)
        yield settings
    finally:
        localstack_service(settings).down(timeout=5)  # what is left then is SIGKILLed, whole
        cloud_service(settings).down()


def test_glue_is_refused_and_the_catalog_stays_in_the_embedded_cloud(
    localstack: Settings,
) -> None:
    refusal = glue_refusal(localstack)
    assert refusal is not None and "license plan" in refusal
    assert localstack.catalog_in_embedded_cloud
    glue = make_client(localstack, "glue")
    assert glue.meta.endpoint_url == localstack.embedded_url
    assert glue.get_database(Name=localstack.glue_database)["Database"]["Name"]
    # everything else is LocalStack's
    for service in ("s3", "kinesis", "dynamodb", "stepfunctions", "sqs"):
        assert make_client(localstack, service).meta.endpoint_url == localstack.endpoint_url


def test_stream_lands_and_the_etl_and_online_table_run_on_localstack(
    localstack: Settings, tmp_path: Path
) -> None:
    from benchmarks import cluster_parity as parity
    from ingestion.tasks import land, produce
    from serving.online import materialize

    sent = produce(localstack, names.SOURCE_SYNTHETIC, accounts=ACCOUNTS, months=6, seed=7)
    assert sent["sent"] > 0 and not sent["failed"]
    landed = land(localstack)
    assert landed["landed"] == sent["sent"], landed
    s3 = make_client(localstack, "s3")
    bucket = localstack.bucket("raw")
    lines = 0
    for item in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        lines += len(gzip.decompress(body).splitlines())
    assert lines == sent["sent"]
    checkpoints = make_client(localstack, "dynamodb").scan(TableName=localstack.checkpoint_table)
    assert checkpoints["Count"] >= localstack.shard_count

    # both ETL jobs in a fresh process (its own Spark, S3A pointed at LocalStack's endpoint)
    reports = parity.run_jobs_on(
        localstack, "local[1]", log=tmp_path / "etl.log", timeout=300, env=QUICK_JIT
    )
    r2c, c2f = reports["raw_to_curated"], reports["curated_to_features"]
    assert sum(r2c["rows_out"].values()) == sent["sent"]
    assert r2c["duplicates_removed"] == 0
    assert c2f["rows_out"] > 0
    glue = make_client(localstack, "glue")  # the catalog registered the tables on LocalStack's S3
    tables = glue.get_tables(DatabaseName=localstack.glue_database)["TableList"]
    locations = {t["Name"]: t["StorageDescriptor"]["Location"] for t in tables}
    features = names.features_table(names.SOURCE_SYNTHETIC)
    assert features in locations and locations[features].startswith("s3://")

    portfolio = localstack.for_portfolio(names.SOURCE_SYNTHETIC)
    online = materialize(portfolio)
    assert online["accounts"] == ACCOUNTS
    scan = make_client(localstack, "dynamodb").scan(TableName=portfolio.online_table)
    assert scan["Count"] == ACCOUNTS + 1  # every account, and the table's metadata item


def test_a_step_functions_execution_runs_on_localstack(
    localstack: Settings, tmp_path: Path
) -> None:
    from pipeline import sfn
    from pipeline.sfn_worker import worker_service
    from tests.dags.test_sfn_parity import MACHINE, TEST_STEPS

    settings = localstack.with_overrides(sfn_worker_url=f"http://127.0.0.1:{free_port()}")
    worker = worker_service(settings, extra_steps=[TEST_STEPS], preload=False)  # light steps
    worker.up()
    try:
        arn = sfn.deploy(settings, MACHINE, name=f"{settings.prefix}-m{uuid.uuid4().hex[:6]}")
        params = {"counter_dir": str(tmp_path), "mode": "transient", "promote": True}
        outcome = sfn.wait(settings, sfn.start(settings, arn, params), timeout=240, poll=0.3)
    finally:
        worker.down()
    assert outcome.status == "SUCCEEDED", outcome
    runs = outcome.runs
    first = runs["First"]
    assert (first.attempts, first.status) == (2, "success")  # LocalStack's Retry, not ours
    ran = {name for name, run in runs.items() if run.status == "success"}
    assert {"First", "Left", "Right", "Decide", "Promote", "Finish"} <= ran
    assert (tmp_path / "flaky").read_text() == "2"


def _namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def _interfaces(pid: int) -> list[str]:
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def _listening(pid: int) -> list[tuple[str, int]]:
    """The (address, port) of every listening socket ``pid`` holds, in its own namespace."""
    inodes = listening_inodes(Path(f"/proc/{pid}"))
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.append(inodes[target[8:-1]])
    return found


def test_every_socket_is_on_loopback_or_in_a_private_namespace(localstack: Settings) -> None:
    import ipaddress

    status = localstack_service(localstack).status()
    assert status.pid is not None
    tree = sorted(process_tree(status.pid))
    host = _namespace(os.getpid())
    exposed: list[str] = []
    private: dict[int, list[tuple[str, int]]] = {}
    for pid in tree:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if _namespace(pid) == host:
                exposed += [
                    f"pid {pid} on {a}:{p}"
                    for a, p in _listening(pid)
                    if not ipaddress.ip_address(a).is_loopback
                ]
            else:
                assert _interfaces(pid) == ["lo"], (pid, _interfaces(pid))
                private[pid] = _listening(pid)
    assert exposed == []
    catalog = cloud_service(localstack).status().pid  # the embedded cloud keeping the catalog
    assert catalog is not None
    assert [x.line() for x in listeners(process_tree(catalog)) if not x.loopback] == []
    # the engines LocalStack started (node for Kinesis, java for DynamoDB) are in there, and
    # some of them listen on every interface: of the private namespace only
    commands = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in private}
    assert {"node", "java"} <= set(commands.values()), commands
    assert any(a in ("0.0.0.0", "::") for sockets in private.values() for a, _ in sockets)
