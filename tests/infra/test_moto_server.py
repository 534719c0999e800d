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
