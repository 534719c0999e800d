"""Kinesis records on disk (infra/kinesis_records.py): segment files and a compact index in place
of moto's Record objects; the same answers as moto's in-memory shard, the same durability, and
trimmed records leave the disk."""

from __future__ import annotations

import base64
import datetime
import json
import pickle
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from infra import kinesis_records
from infra.cloud import cloud_service, cloud_state_dir
from infra.durable import CONTROL_PREFIX
from infra.kinesis_records import RECORDS_NAME, ShardRecords, decode, encode
from infra.services import ManagedService, free_port
from riskstream.clients import make_client
from riskstream.settings import Settings
from tests.conftest import stop_the_cloud
from tests.infra.test_retention import move_clock, read_after


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def records_dir(tmp_path: Path) -> Iterator[Path]:
    """Stores of this test keep their files in ``tmp_path``, four records a segment."""
    previous = kinesis_records.use_directory(tmp_path, segment_records=4)
    try:
        yield tmp_path
    finally:
        kinesis_records.use_directory(previous)


def _fill(store: ShardRecords, n: int, first: int = 1, second: int = 1_000_000) -> None:
    for i in range(n):
        seq = first + i
        hash_key = None if seq % 3 else str(seq * 7)
        store.append(seq, f"pk{seq}", b64(f"data{seq}"), hash_key, second * seq)


# ---- unit ---------------------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize(
    ("key", "data", "hash_key"),
    [
        ("p", b64("x" * 300), None),
        ("ключ", b64(""), "340282366920938463463374607431768211455"),
        ("p", "not canonical base64!", ""),
        ("p", "YQ", None),  # unpadded: kept as its text, not re-encoded
        ("p", None, None),
    ],
)
def test_a_frame_gives_back_exactly_what_moto_was_given(
    key: str, data: str | None, hash_key: str | None
) -> None:
    assert decode(encode(key, data, hash_key)) == (key, data, hash_key)


@pytest.mark.unit
@pytest.mark.usefixtures("records_dir")
def test_a_store_answers_as_moto_s_ordered_dict_does() -> None:
    from moto.kinesis.models import Record

    store = ShardRecords()
    assert (len(store), list(store), list(reversed(store)), 1 in store) == (0, [], [], False)
    _fill(store, 10)
    assert len(store) == 10 and (store.first, store.last) == (1, 10)
    assert list(store) == list(range(1, 11)) and next(reversed(store)) == 10
    assert sorted(p.name for p in store.directory.iterdir()) == [
        "00000000000000000001.seg",
        "00000000000000000005.seg",
        "00000000000000000009.seg",
    ]
    record = store[6]
    assert isinstance(record, Record)
    assert record.to_json() == {
        "Data": b"data6",
        "PartitionKey": "pk6",
        "SequenceNumber": "6",
        "ApproximateArrivalTimestamp": datetime.datetime(1970, 1, 1, 0, 0, 6),
    }
    assert (record.explicit_hash_key, record.created_at) == ("42", 6.0)
    assert not any(r is record for r in Record.instances_tracked)  # moto's list: not kept there
    assert [r.sequence_number for r in store.page(3, 9)] == list(range(3, 10))  # 3 segments
    assert [seq for seq, _ in store.items()] == list(range(1, 11))
    assert [r.data for r in store.values()] == [b64(f"data{i}") for i in range(1, 11)]
    with pytest.raises(KeyError):
        store[11]
    with pytest.raises(ValueError, match="does not follow"):
        store.append(12, "k", b64("x"), None, 12)

    moto = Record("pk11", b64("data11"), 11, None)  # moto's own `records[n] = Record(...)`
    store[11] = moto
    assert store[11].to_json() == moto.to_json()

    del store[1]  # only the oldest can go
    with pytest.raises(KeyError):
        del store[5]
    assert (store.first, 1 in store, 2 in store) == (2, False, True)


@pytest.mark.unit
@pytest.mark.usefixtures("records_dir")
def test_trimming_drops_the_head_and_whole_segments_go_after_a_snapshot() -> None:
    store = ShardRecords()
    _fill(store, 10)
    assert store.trim_before(5.5) == 5  # records 1-5 arrived before 5.5 s
    assert (store.first, len(store)) == (6, 5)
    # the first segment (1-4) is wholly gone: its file goes once a snapshot no longer names it
    assert kinesis_records._Installed.pending == [store.directory / "00000000000000000001.seg"]
    assert store.sequence_number_at(6.0) == 0  # not after the oldest kept
    assert store.sequence_number_at(8.5) == 8  # the newest that arrived before
    assert store.sequence_number_at(99.0) == 10
    assert store.trim_before(99.0) == 5 and len(store) == 0
    store.append(11, "k", b64("after"), None, 100_000_000)  # numbering goes on
    assert [r.sequence_number for r in store.values()] == [11]


@pytest.mark.unit
@pytest.mark.usefixtures("records_dir")
def test_a_clock_that_stepped_back_trims_only_up_to_the_first_newer_record() -> None:
    store = ShardRecords()
    for seq, second in enumerate([1, 2, 9, 3, 4], start=1):  # as moto: stop at the first kept
        store.append(seq, "k", b64("x"), None, second * 1_000_000)
    assert store.trim_before(5.0) == 2
    assert store.first == 3
    assert store.sequence_number_at(3.5) == 0  # as moto: not after the oldest kept (9 s)
    assert store.sequence_number_at(9.5) == 5  # the newest arrived before 9.5 s


@pytest.mark.unit
@pytest.mark.usefixtures("records_dir")
def test_a_store_pickles_its_index_not_its_data() -> None:
    store = ShardRecords()
    payload = b64("x" * 3_000)
    for seq in range(1, 101):
        store.append(seq, "k", payload, None, seq)
    data = pickle.dumps(store, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(data) < 100 * 40  # ~12 bytes a record plus a few per segment, not 3 KB a record
    again = pickle.loads(data)
    assert [r.to_json() for r in again.values()] == [r.to_json() for r in store.values()]
    again.append(101, "k", payload, None, 101)  # the last segment opens again for appends
    assert again[101].data == payload and again[100].data == payload


@pytest.mark.unit
@pytest.mark.usefixtures("records_dir")
def test_the_launcher_reads_and_trims_a_store_as_moto_s_dict() -> None:
    from moto.kinesis.models import Shard

    from infra.moto_server import _scan_records, patch_moto, trim_shard

    patch_moto()
    on_disk = Shard(0, 0, 2**128)
    on_disk.records = ShardRecords()  # the durable cloud's (installed there as a property)
    in_memory = Shard(0, 0, 2**128)
    in_memory.records = OrderedDict()
    for shard in (on_disk, in_memory):
        for i in range(30):
            shard.put_record(f"k{i}", b64(f"d{i}"), None)

    def page(shard: Shard, *args: Any) -> Any:
        records, last, behind = shard.get_records(*args)
        return [r.to_json()["Data"] for r in records], last, behind >= 0

    for position in ("0", "3", "17", "29", "30", "99"):
        for limit in (None, 1, 4, 10_000):
            assert page(on_disk, position, limit) == page(in_memory, position, limit)
            ours = on_disk.get_records(position, limit)[0]
            assert [r.sequence_number for r in ours] == [
                r.sequence_number for r in _scan_records(on_disk, position, limit)[0]
            ]
    later = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=1)
    assert trim_shard(on_disk, 0.5, later) == trim_shard(in_memory, 0.5, later) == 30
    assert on_disk.trimmed_through == in_memory.trimmed_through == 30  # type: ignore[attr-defined]
    assert on_disk.put_record("k", b64("next"), None) == "31"
    on_disk.records.close()


# ---- integration --------------------------------------------------------------------------------
def _durable(tmp_path: Path, segment_records: int = 4) -> tuple[Settings, ManagedService]:
    settings = Settings.from_mapping(
        {
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "RISKSTREAM_STATE_DIR": str(tmp_path),
            "RISKSTREAM_PREFIX": "rskin",
        }
    )
    service = cloud_service(settings)
    argv = [*service.spec.argv, "--segment-records", str(segment_records)]
    return settings, ManagedService(replace(service.spec, argv=argv), settings.state_dir)


def _snapshot(settings: Settings) -> None:
    url = f"{settings.endpoint_url}{CONTROL_PREFIX}snapshot"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=60) as r:
        json.loads(r.read())


def _put(kinesis: Any, name: str, tag: str, n: int) -> list[str]:
    records = [{"Data": f"{tag}{i}".encode(), "PartitionKey": f"p{i}"} for i in range(n)]
    return [
        r["SequenceNumber"]
        for r in kinesis.put_records(StreamName=name, Records=records)["Records"]
    ]


def _segments(settings: Settings) -> list[str]:
    folder = cloud_state_dir(settings) / RECORDS_NAME
    return sorted(p.name for p in folder.glob("*/*.seg"))


@pytest.mark.integration
def test_records_on_disk_survive_kill_9_and_trimmed_ones_leave_the_disk(
    tmp_path: Path,
) -> None:
    settings, service = _durable(tmp_path)
    name = "records"
    status = service.up()
    try:
        kinesis = make_client(settings, "kinesis")
        kinesis.create_stream(StreamName=name, ShardCount=1)
        first = _put(kinesis, name, "a", 6)
        # Killed before any snapshot: the log alone brings them back.
        stop_the_cloud(service, status.pid, "kill -9")
        status = service.up()
        kinesis = make_client(settings, "kinesis")
        assert read_after(kinesis, name, None)[0] == [f"a{i}" for i in range(6)]
        # Killed after a snapshot and more writes: segments cut back to it, the log replayed.
        _snapshot(settings)
        assert _put(kinesis, name, "a", 4) == ["7", "8", "9", "10"]
        stop_the_cloud(service, status.pid, "kill -9")
        status = service.up()
        kinesis = make_client(settings, "kinesis")
        data, _ = read_after(kinesis, name, None)
        assert data == [f"a{i}" for i in range(6)] + [f"a{i}" for i in range(4)]
        assert _segments(settings) == [
            "00000000000000000001.seg",
            "00000000000000000005.seg",
            "00000000000000000009.seg",
        ]
        caught_up, lagging = "10", first[3]  # two consumers' checkpoints

        # A day later every record has expired; the next write trims them.
        move_clock(settings, 25)
        later = _put(kinesis, name, "b", 5)
        assert later == [str(n) for n in range(11, 16)]  # numbering goes on
        _snapshot(settings)
        assert _segments(settings) == ["00000000000000000011.seg", "00000000000000000015.seg"]
        data, cursor = read_after(kinesis, name, caught_up)
        assert (data, cursor.expired) == ([f"b{i}" for i in range(5)], [])
        data, cursor = read_after(kinesis, name, lagging)
        assert cursor.expired == [(lagging, later[0])]

        stop_the_cloud(service, status.pid, "kill -9")
        service.up()
        kinesis = make_client(settings, "kinesis")
        assert read_after(kinesis, name, None)[0] == [f"b{i}" for i in range(5)]
        assert _put(kinesis, name, "c", 1) == ["16"]
    finally:
        service.down()


def _script(settings: Settings) -> list[Any]:
    """The same Kinesis calls on a cloud; what it answered, less the arrival times."""
    kinesis = make_client(settings, "kinesis")
    name = f"parity-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    answers: list[Any] = []

    def put(tag: str, n: int) -> None:
        records = [
            {"Data": f"{tag}{i}".encode(), "PartitionKey": f"p{i}"}
            | ({"ExplicitHashKey": str(2**127 + i)} if i % 4 == 0 else {})
            for i in range(n)
        ]
        answers.append(kinesis.put_records(StreamName=name, Records=records)["Records"])

    def read_all() -> None:
        for shard in kinesis.list_shards(StreamName=name)["Shards"]:
            answers.append(shard)
            for kind in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
                extra = (
                    {"Timestamp": datetime.datetime(2000, 1, 1)} if kind == "AT_TIMESTAMP" else {}
                )
                iterator = kinesis.get_shard_iterator(
                    StreamName=name, ShardId=shard["ShardId"], ShardIteratorType=kind, **extra
                )["ShardIterator"]
                for _ in range(20):  # bounded
                    page = kinesis.get_records(ShardIterator=iterator, Limit=7)
                    records = [
                        (r["SequenceNumber"], r["PartitionKey"], r["Data"]) for r in page["Records"]
                    ]
                    answers.append((kind, records))
                    if not records:
                        break
                    iterator = page["NextShardIterator"]

    put("a", 40)
    read_all()
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]
    middle = (
        int(shard["HashKeyRange"]["StartingHashKey"]) + int(shard["HashKeyRange"]["EndingHashKey"])
    ) // 2
    kinesis.split_shard(
        StreamName=name, ShardToSplit=shard["ShardId"], NewStartingHashKey=str(middle)
    )
    put("b", 30)
    read_all()
    kinesis.update_shard_count(StreamName=name, TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    put("c", 10)
    read_all()
    kinesis.delete_stream(StreamName=name)
    return answers


@pytest.mark.integration
def test_the_durable_cloud_answers_kinesis_as_the_in_memory_one(
    cloud_settings: Settings, tmp_path: Path
) -> None:
    """Reads, iterators of every kind, a split, a merge: the same answers from records on disk
    as from moto's in-memory shards (the session's ephemeral cloud)."""
    settings, service = _durable(tmp_path)
    service.up()
    try:
        ours = _script(settings)
        _snapshot(settings)  # the deleted stream's files go with it
        assert _segments(settings) == []
    finally:
        service.down()
    assert ours == _script(cloud_settings)


@pytest.mark.unit
def test_a_snapshot_child_outlives_the_thread_that_asked_for_it() -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends: the forker thread lives on, so a
    child asked for by a request's thread is not killed when that thread ends (forked from the
    asking thread itself, it was: -9)."""
    import os
    import threading
    import time

    from infra.durable import FORKER, _child_setup

    parent = os.getpid()
    go_read, go_write = os.pipe()
    ready_read, ready_write = os.pipe()

    def child() -> None:
        try:
            _child_setup(parent)  # sets the death signal
            os.write(ready_write, b"r")
            os.read(go_read, 1)  # until the asking thread has ended
        finally:
            os._exit(7)

    pids: list[int] = []

    def ask() -> None:
        pids.append(FORKER.fork(child))
        os.read(ready_read, 1)  # end only once the child's death signal is set

    asker = threading.Thread(target=ask)
    asker.start()
    asker.join()
    time.sleep(0.2)  # the kernel's death signal, were it bound to the asker, is sent by now
    os.write(go_write, b"x")
    _, status = os.waitpid(pids[0], 0)
    for fd in (go_read, go_write, ready_read, ready_write):
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 7  # exited itself, not killed (-9)
