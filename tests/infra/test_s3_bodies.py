"""S3 object bodies on disk (infra/s3_bodies.py): content-addressed files, not in memory and not in
the snapshot; the same durability; bodies no key refers to go after a snapshot."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra.cloud import cloud_service, cloud_state_dir
from infra.durable import CONTROL_PREFIX
from infra.s3_bodies import BODIES_NAME, BodyStore
from infra.services import free_port
from riskstream.clients import make_client
from riskstream.settings import Settings


@pytest.mark.unit
def test_a_body_store_writes_each_content_once_and_collects_what_no_key_needs(
    tmp_path: Path,
) -> None:
    store = BodyStore(tmp_path / "bodies")
    first = store.put(b"one")
    assert first == hashlib.sha256(b"one").hexdigest()
    assert store.put(b"one") == first  # the same bytes: the same file
    second = store.put(b"two")
    assert store.get(first) == b"one"
    assert store.path(first) == tmp_path / "bodies" / first[:2] / first
    (store.path(second).parent / ".tmp-left-by-a-crash").write_bytes(b"half")
    assert store.collect({first}) == 2  # "two" and the temporary file
    assert [p.name for p in store.files()] == [first]
    with pytest.raises(FileNotFoundError, match="bodies folder"):
        store.get(second)


def _key(value: bytes) -> Any:
    from moto.s3.models import FakeKey

    return FakeKey("k", value, account_id="123456789012", region_name="us-east-1")


@pytest.mark.unit
def test_a_key_pickles_its_digest_not_its_body(tmp_path: Path) -> None:
    from infra import s3_bodies

    previous = s3_bodies.installed()
    s3_bodies.install(tmp_path / "bodies")
    try:
        key = _key(b"x" * 100_000)
        assert key.etag == f'"{hashlib.md5(b"x" * 100_000, usedforsecurity=False).hexdigest()}"'
        data = pickle.dumps(key)
        assert len(data) < 5_000
        again = pickle.loads(data)
        assert (again.value, again.size, again.etag) == (key.value, 100_000, key.etag)
        # A key pickled by moto itself (a format 1 snapshot) brings its body along: it moves
        # to a file as it loads.
        legacy = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
        legacy.pop("_body")
        legacy["value"] = b"from an old snapshot"
        old = type(key).__new__(type(key))
        old.__setstate__(legacy)
        assert old.value == b"from an old snapshot"
        with s3_bodies.naming() as named:
            pickle.dumps([old, again])
        assert named == {
            hashlib.sha256(b).hexdigest() for b in (b"from an old snapshot", key.value)
        }
    finally:
        s3_bodies._Installed.store = previous


def _snapshot(settings: Settings) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.cloud_port}{CONTROL_PREFIX}snapshot"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=60) as r:
        return dict(json.loads(r.read()))


@pytest.mark.integration
def test_bodies_live_on_disk_survive_a_restart_and_unused_ones_go(tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        {
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "RISKSTREAM_STATE_DIR": str(tmp_path),
            "RISKSTREAM_PREFIX": "rsbody",
        }
    )
    service = cloud_service(settings)
    bodies = {f"k{i}": os.urandom(300_000) for i in range(4)}
    bodies["copy"] = bodies["k0"]  # the same bytes under a second key: one file
    service.up()
    try:
        s3 = make_client(settings, "s3")
        s3.create_bucket(Bucket="bodies")
        for key, body in bodies.items():
            s3.put_object(Bucket="bodies", Key=key, Body=body)
        s3.delete_object(Bucket="bodies", Key="k3")
        del bodies["k3"]
        snapshot = _snapshot(settings)
        # The snapshot holds the keys' metadata, not 1.2 MB of bodies.
        assert snapshot["bytes"] < 200_000
        folder = cloud_state_dir(settings) / BODIES_NAME
        on_disk = sorted(p.name for p in folder.glob("??/*"))
        expected = sorted({hashlib.sha256(b).hexdigest() for b in bodies.values()})
        assert on_disk == expected  # k3's body went with the snapshot; k0's is stored once
    finally:
        service.down()
    service.up()
    try:
        s3 = make_client(settings, "s3")
        for key, body in bodies.items():
            assert s3.get_object(Bucket="bodies", Key=key)["Body"].read() == body
        listed = s3.list_objects_v2(Bucket="bodies")["Contents"]
        assert sorted(o["Key"] for o in listed) == sorted(bodies)
        etags = {o["Key"]: o["ETag"] for o in listed}
        assert etags["k1"] == f'"{hashlib.md5(bodies["k1"], usedforsecurity=False).hexdigest()}"'
    finally:
        service.down()
