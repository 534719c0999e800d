from __future__ import annotations

import pytest
from moto.kinesis.models import Shard

from infra.moto_server import patch_moto

pytestmark = pytest.mark.unit


def test_patched_shard_reports_first_and_last_sequence_numbers() -> None:
    patch_moto()
    shard = Shard(0, 0, 2**128, "000000000000", "us-east-1")
    assert shard.get_min_sequence_number() == 0
    assert shard.get_max_sequence_number() == 0
    first = int(shard.put_record("k1", "ZGF0YQ==", None))
    second = int(shard.put_record("k2", "ZGF0YQ==", None))
    third = int(shard.put_record("k3", "ZGF0YQ==", None))
    assert first < second < third
    assert shard.get_min_sequence_number() == first
    assert shard.get_max_sequence_number() == third


def test_patched_get_records_answers_as_the_walk_over_the_shard_does() -> None:
    from infra.moto_server import _scan_records

    patch_moto()
    shard = Shard(0, 0, 2**128, "000000000000", "us-east-1")
    assert shard.get_records("0", 10) == _scan_records(shard, "0", 10) == ([], 0, 0)
    for i in range(30):
        shard.put_record(f"k{i}", "ZGF0YQ==", None)
    for _ in range(5):  # the oldest records trimmed (retention): the keys start later
        del shard.records[next(iter(shard.records))]
    for position in ("0", "3", "5", "6", "17", "29", "30", "31", "99"):
        for limit in (None, 1, 4, 10_000):
            assert shard.get_records(position, limit) == _scan_records(shard, position, limit)
    del shard.records[20]  # a gap (never made by put_record): moto's walk answers
    for position in ("0", "19", "20", "25"):
        assert shard.get_records(position, 3) == _scan_records(shard, position, 3)


def test_patched_items_are_refused_over_the_size_limit_as_before() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    patch_moto()
    key = DynamoType({"S": "k"})
    item = Item(key, None, {"k": {"S": "k"}, "n": {"N": "3"}, "s": {"S": "x" * 1000}})
    assert item.attrs["n"] == DynamoType({"N": "3"}) and item.size() == 1 + 1 + 1 + 1 + 1 + 1000
    with pytest.raises(ItemSizeTooLarge):  # over the limit only together
        Item(key, None, {"k": {"S": "k"}, "a": {"S": "x" * 250_000}, "b": {"S": "y" * 250_000}})
    with pytest.raises(ItemSizeTooLarge):  # a later write to the item keeps moto's check
        item.attrs["big"] = DynamoType({"S": "z" * 410_000})


def test_the_dispatcher_routes_by_the_service_folders_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from infra.moto_server import _list_moto_modules

    patch_moto()
    assert backends.list_of_moto_modules() == tuple(_list_moto_modules())  # moto's own answer
    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or real(path))
    app = DomainDispatcherApplication(lambda _: None)  # type: ignore[arg-type,return-value]
    for _ in range(3):  # a service, a stranger and the moto API, as moto routes them
        assert app.get_backend_for_host("s3") == "s3"
        assert app.get_backend_for_host("kinesis") == "kinesis"
        assert app.get_backend_for_host("no-such-service") is None
        assert app.get_backend_for_host("moto_api") == "moto_api"
    assert listed == []  # the folder is never listed again


LAZY_STEP_FUNCTIONS = """
import sys
from infra.moto_server import patch_moto
patch_moto()
patch_moto()  # twice: one lookup hook, not two
from moto import backends
print(hasattr(backends.get_backend.__wrapped__, "__wrapped__"))
parser = "moto.stepfunctions.parser.models"
print(parser in sys.modules)
backends.get_backend("s3")
print(parser in sys.modules)
backends.get_backend("stepfunctions")
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
print(getattr(ExecutionState, "_riskstream_patched", False))
print(type(backends.get_backend("stepfunctions")["123456789012"]["us-east-1"]).__name__)
"""

SNAPSHOT_PREPARES = """
import io, pickle, sys
from infra import durable
from infra.moto_server import patch_moto
patch_moto()
from moto.stepfunctions.parser.backend.execution import Execution  # imported, not patched
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
print(getattr(ExecutionState, "_riskstream_patched", False))
durable._Unpickler(io.BytesIO(pickle.dumps({"cls": Execution}))).load()
print(getattr(ExecutionState, "_riskstream_patched", False))
"""


def _child(code: str) -> list[str]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_step_functions_is_patched_in_when_first_looked_up_not_at_start() -> None:
    # a second of imports a server that never runs a state machine does not pay for
    assert _child(LAZY_STEP_FUNCTIONS) == [
        "False",
        "False",
        "False",
        "True",
        "StepFunctionsParserBackend",
    ]


def test_a_snapshot_holding_step_functions_objects_patches_them_before_reading() -> None:
    assert _child(SNAPSHOT_PREPARES) == ["False", "True"]
