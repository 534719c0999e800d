"""The durable embedded cloud: what survives a stop, a kill -9, and what a bad state file says."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest

from infra.cloud import cloud_service, cloud_state_dir
from infra.cloud_state import CloudStateError, export_state, import_state, reset_state
from infra.crash_drill import kill_trial
from infra.durable import (
    SNAPSHOT_MAGIC,
    DurableStore,
    StateError,
    encode_frame,
    is_mutating,
    read_snapshot_header,
    scan_log,
)
from infra.kinesis import read_stream_records
from infra.provision import provision
from infra.services import ManagedService, ServiceError, free_port
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.conftest import stop_the_cloud

ROLE = "arn:aws:iam::123456789012:role/riskstream-test"
PASS_MACHINE = '{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}'


def _settings(state: Path) -> Settings:
    return Settings.from_mapping(
        {
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "RISKSTREAM_STATE_DIR": str(state),
            "RISKSTREAM_PREFIX": "rsdur",
        }
    )


# ---- unit ---------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", None, False),
        ("HEAD", None, False),
        ("PUT", None, True),
        ("DELETE", None, True),
        ("POST", None, True),
        ("POST", "Kinesis_20131202.PutRecords", True),
        ("POST", "Kinesis_20131202.GetRecords", False),
        ("POST", "Kinesis_20131202.DescribeStream", False),
        ("POST", "DynamoDB_20120810.Query", False),
        ("POST", "DynamoDB_20120810.UpdateItem", True),
        ("POST", "AWSGlue.GetTables", False),
        ("POST", "AWSGlue.CreateTable", True),
        ("POST", "AWSStepFunctions.GetActivityTask", True),
    ],
)
def test_only_writes_go_to_the_log(method: str, target: str | None, expected: bool) -> None:
    assert is_mutating(method, target) is expected


@pytest.mark.unit
def test_an_items_attributes_load_from_a_snapshot_without_moto_s_per_insert_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    from infra.moto_server import patch_moto

    patch_moto()
    attrs = LimitedSizeDict()
    dict.update(attrs, {"id": DynamoType({"S": "a"}), "features": DynamoType({"S": "x" * 300})})
    data = pickle.dumps(attrs, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"__main__" not in data  # the server runs infra.moto_server as __main__

    def refuse(self: object, key: str, value: object) -> None:
        raise AssertionError("the size check ran on load")

    monkeypatch.setattr(LimitedSizeDict, "__setitem__", refuse)
    loaded = pickle.loads(data)
    assert type(loaded) is LimitedSizeDict and loaded == attrs


@pytest.mark.unit
def test_the_replay_budget_grows_with_the_snapshot_up_to_a_ceiling(tmp_path: Path) -> None:
    store = DurableStore(tmp_path, replay_budget=2.0, replay_ceiling=5.0)
    store.last_snapshot_seconds = 1.0  # a small state: the budget is the floor
    store.append({"seq": 1, "at": 0.0}, applied_seconds=1.9)
    assert not store.due()
    store.append({"seq": 2, "at": 0.0}, applied_seconds=0.2)
    assert store.due()
    store.last_snapshot_seconds = 3.0  # 1.5x the snapshot: 4.5 s of log
    assert not store.due()
    store.last_snapshot_seconds = 60.0  # a huge state: still at most the ceiling
    store.append({"seq": 3, "at": 0.0}, applied_seconds=2.9)
    assert store.due()
    store.close()


@pytest.mark.unit
def test_a_torn_last_frame_is_dropped_but_a_corrupt_middle_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "wal.log"
    frames = [encode_frame({"seq": i, "body": b"x" * i}) for i in (1, 2, 3)]
    log.write_bytes(frames[0] + frames[1] + frames[2][:-5])  # killed while writing the third
    scan = scan_log(log)
    assert [e["seq"] for e in scan.entries] == [1, 2]
    assert scan.good_bytes == len(frames[0]) + len(frames[1])
    assert scan.torn_bytes == len(frames[2]) - 5

    broken = bytearray(frames[0] + frames[1] + frames[2])
    broken[len(frames[0]) + 20] ^= 0xFF  # flip a byte inside the second frame's payload
    log.write_bytes(bytes(broken))
    with pytest.raises(StateError, match=r"wal\.log.*checksum.*--start-empty"):
        scan_log(log)


@pytest.mark.unit
def test_a_snapshot_from_another_moto_names_the_file_and_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pkl"
    header = {"format": 1, "moto": "0.0.1", "last_seq": 3}
    path.write_bytes(SNAPSHOT_MAGIC + json.dumps(header).encode() + b"\n" + b"data")
    with pytest.raises(StateError, match=r"snapshot\.pkl.*moto 0\.0\.1.*--start-empty"):
        read_snapshot_header(path)
    path.write_bytes(b"not a snapshot")
    with pytest.raises(StateError, match="not a riskstream cloud snapshot"):
        read_snapshot_header(path)


# ---- integration --------------------------------------------------------------------------------
def _fill(settings: Settings) -> dict[str, object]:
    """Write to every durable service; return what the client was told."""
    provision(settings)
    s3 = make_client(settings, "s3")
    kinesis = make_client(settings, "kinesis")
    dynamodb = make_client(settings, "dynamodb")
    sfn = make_client(settings, "stepfunctions")
    bucket = settings.bucket("raw")
    s3.put_object(Bucket=bucket, Key="a/b.json", Body=b'{"x": 1}')
    # an upload in flight: its id must mean the same upload after the restart (moto drew it
    # from os.urandom, so a replay named it anew and the next UploadPart failed)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=1, Body=b"p1")
    put = kinesis.put_records(
        StreamName=settings.stream_name,
        Records=[{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(20)],
    )
    tables = dynamodb.list_tables()["TableNames"]
    machine = sfn.create_state_machine(name="m", definition=PASS_MACHINE, roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])
    return {
        "etag": s3.head_object(Bucket=bucket, Key="a/b.json")["ETag"],
        "modified": s3.head_object(Bucket=bucket, Key="a/b.json")["LastModified"],
        "seqs": sorted(r["SequenceNumber"] for r in put["Records"]),
        "tables": tables,
        "databases": sorted(
            d["Name"] for d in make_client(settings, "glue").get_databases()["DatabaseList"]
        ),
        "execution": execution["executionArn"],
        "machine": machine["stateMachineArn"],
        "uploads": [upload],
    }


def _read(settings: Settings, machine: str) -> dict[str, object]:
    s3 = make_client(settings, "s3")
    kinesis = make_client(settings, "kinesis")
    bucket = settings.bucket("raw")
    seqs = [r["SequenceNumber"] for _, r in read_stream_records(kinesis, settings.stream_name)]
    executions = make_client(settings, "stepfunctions").list_executions(stateMachineArn=machine)
    return {
        "etag": s3.head_object(Bucket=bucket, Key="a/b.json")["ETag"],
        "modified": s3.head_object(Bucket=bucket, Key="a/b.json")["LastModified"],
        "seqs": sorted(seqs),
        "tables": make_client(settings, "dynamodb").list_tables()["TableNames"],
        "databases": sorted(
            d["Name"] for d in make_client(settings, "glue").get_databases()["DatabaseList"]
        ),
        "execution": executions["executions"][0]["executionArn"],
        "machine": machine,
        "uploads": [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]],
    }


@pytest.mark.integration
@pytest.mark.parametrize("how", ["kill -9", "cloud down"])
def test_every_service_keeps_its_state_and_ids_across_a_restart(tmp_path: Path, how: str) -> None:
    settings = _settings(tmp_path)
    service = cloud_service(settings)
    status = service.up()
    try:
        before = _fill(settings)
        stop_the_cloud(service, status.pid, how)
        if how != "kill -9":  # a clean stop snapshots and empties the log
            assert (cloud_state_dir(settings) / "wal.log").stat().st_size == 0
        service.up()
        assert _read(settings, str(before["machine"])) == before
        s3 = make_client(settings, "s3")  # and the upload goes on where it was
        bucket, upload = settings.bucket("raw"), str(before["uploads"][0])  # type: ignore[index]
        part2 = s3.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=2, Body=b"p2"
        )
        parts = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload)["Parts"]
        assert [p["PartNumber"] for p in parts] == [1, 2] and part2["ETag"]
    finally:
        service.down()


@pytest.mark.integration
def test_a_restart_inside_a_background_snapshot_answers_and_snapshots_behind(
    tmp_path: Path,
) -> None:
    """A crash while a background snapshot ran leaves ``wal.prev`` and ``wal.log``. The restart
    replays both, makes them one log, and writes its snapshot in the background (it used to
    write it before answering, which at 100x cost seconds of every restart); nothing is lost,
    through this restart and the next crash."""
    settings = _settings(tmp_path)
    service = cloud_service(settings)
    status = service.up()
    before = _fill(settings)
    stop_the_cloud(service, status.pid, "kill -9")
    state = cloud_state_dir(settings)
    entries = scan_log(state / "wal.log").entries
    assert len(entries) > 4
    half = len(entries) // 2  # as the crash found them: the snapshot's segment, then the new log
    (state / "wal.prev").write_bytes(b"".join(encode_frame(e) for e in entries[:half]))
    (state / "wal.log").write_bytes(b"".join(encode_frame(e) for e in entries[half:]))
    # a budget of 0: any replay is long, so the restart snapshots
    spec = replace(service.spec, argv=[*service.spec.argv, "--replay-budget", "0"])
    service = ManagedService(spec, settings.state_dir)
    status = service.up()
    try:
        assert _read(settings, str(before["machine"])) == before
        assert _write_until_logged(settings, service, "background snapshot of the local cloud")
        assert "snapshot of the local cloud:" not in service.log_file.read_text()  # foreground
        stop_the_cloud(service, status.pid, "kill -9")
        service.up()
        assert _read(settings, str(before["machine"])) == before
    finally:
        service.down()


@pytest.mark.integration
def test_a_quiet_cloud_snapshots_so_a_restart_replays_nothing(tmp_path: Path) -> None:
    """Writes, then a pause: the cloud snapshots behind them by itself (no write has to come
    to trigger or collect it), so a kill -9 after a run restarts from the snapshot alone."""
    settings = _settings(tmp_path)
    service = cloud_service(settings)
    status = service.up()
    try:
        before = _fill(settings)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: the pause is 2 s, a snapshot well under 1
            text = service.log_file.read_text()
            if "background snapshot of the local cloud" in text:
                break
            time.sleep(0.2)
        assert "background snapshot of the local cloud" in service.log_file.read_text()
        stop_the_cloud(service, status.pid, "kill -9")
        service.up()
        assert "0 requests replayed" in service.log_file.read_text().rsplit("restored", 1)[1]
        assert _read(settings, str(before["machine"])) == before
    finally:
        service.down()


@pytest.mark.integration
def test_an_unreadable_state_stops_the_start_and_start_empty_keeps_it_aside(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    service = cloud_service(settings)
    service.up()
    make_client(settings, "s3").create_bucket(Bucket="kept-bucket")
    service.down()
    snapshot = cloud_state_dir(settings) / "snapshot.pkl"
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) // 2])  # a truncated file
    with pytest.raises(ServiceError, match=r"snapshot\.pkl.*--start-empty"):
        service.up()
    assert snapshot.read_bytes() == data[: len(data) // 2]  # nothing wiped

    from infra.cloud import move_state_aside

    aside = move_state_aside(settings)
    assert aside is not None and (aside / "snapshot.pkl").is_file()
    service.up()
    try:
        assert make_client(settings, "s3").list_buckets()["Buckets"] == []
    finally:
        service.down()


@pytest.mark.integration
def test_export_import_and_reset(tmp_path: Path) -> None:
    source = _settings(tmp_path / "a")
    service = cloud_service(source)
    service.up()
    try:
        make_client(source, "s3").create_bucket(Bucket="moved-bucket")
        make_client(source, "s3").put_object(Bucket="moved-bucket", Key="k", Body=b"v")
        kinesis = make_client(source, "kinesis")
        kinesis.create_stream(StreamName="moved-stream", ShardCount=1)
        records = [{"Data": f"r{i}".encode(), "PartitionKey": "p"} for i in range(3)]
        kinesis.put_records(StreamName="moved-stream", Records=records)
        archive = tmp_path / "cloud.tar.gz"
        export_state(source, archive)  # from the running cloud
        with pytest.raises(CloudStateError, match="cloud down"):
            import_state(source, archive)
        assert "emptied" in reset_state(source)
        assert make_client(source, "s3").list_buckets()["Buckets"] == []
    finally:
        service.down()
    service.up()  # the reset survived the restart too
    try:
        assert make_client(source, "s3").list_buckets()["Buckets"] == []
    finally:
        service.down()

    target = _settings(tmp_path / "b")
    import_state(target, archive)
    other = cloud_service(target)
    other.up()
    try:
        body = make_client(target, "s3").get_object(Bucket="moved-bucket", Key="k")["Body"]
        assert body.read() == b"v"
        moved = read_stream_records(make_client(target, "kinesis"), "moved-stream")
        assert [r["Data"] for _, r in moved] == [b"r0", b"r1", b"r2"]  # segment files moved too
    finally:
        other.down()
    with pytest.raises(CloudStateError, match="not a riskstream cloud archive"):
        bogus = tmp_path / "bogus.tar.gz"
        import tarfile

        with tarfile.open(bogus, "w:gz"):
            pass
        import_state(target, bogus)


@pytest.mark.integration
@pytest.mark.parametrize("budget", [None, 0.02], ids=["default", "snapshot-every-few-writes"])
def test_kill_9_at_seeded_points_loses_no_acknowledged_write(
    tmp_path: Path, budget: float | None
) -> None:
    """With a tiny replay budget, kills also land during background snapshots (wal.prev)."""
    settings = _settings(tmp_path)
    service = cloud_service(settings)
    if budget is not None:
        spec = replace(service.spec, argv=[*service.spec.argv, "--replay-budget", str(budget)])
        service = ManagedService(spec, settings.state_dir)
    service.up()
    provision(settings)
    rng = random.Random(12)
    total = 0
    try:
        for _ in range(4):
            acked, lost = kill_trial(settings, rng, service=service)
            total += acked
            assert lost == 0
        assert total > 0
        if budget is not None:
            # Whether a kill fell inside a snapshot depends on timing; that this configuration
            # snapshots in the background does not: a snapshot is collected (and logged) by the
            # first request after its child ends, so write until one is.
            assert _write_until_logged(settings, service, "background snapshot of the local cloud")
    finally:
        service.down()


def _write_until_logged(
    settings: Settings, service: ManagedService, line: str, writes: int = 400
) -> bool:
    """Write small S3 objects, pausing a little, until the cloud's log shows ``line``."""
    s3 = make_client(settings, "s3")
    for i in range(writes):
        if line in service.log_file.read_text():
            return True
        s3.put_object(Bucket=settings.bucket("raw"), Key=f"after-trials/{i}", Body=b"x")
        time.sleep(0.05)
    return line in service.log_file.read_text()
