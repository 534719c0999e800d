"""Launch moto's server with one performance fix for Kinesis (used by `riskstream cloud up`).

moto 5 answers "last sequence number of a shard" by copying the shard's whole key list, on every
PutRecords entry, so a put costs O(records already in the shard) and producing 150,000 events
took about ten times longer than it should (350 s against 35 s, measured here). A shard keeps its
records in an OrderedDict keyed by sequence number, so the first and last keys are O(1) to read.
The behaviour is otherwise unchanged: this is still moto speaking the AWS wire protocol.
"""

from __future__ import annotations

import sys
from collections import OrderedDict

from moto.kinesis import models


def _first_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    return next(iter(records)) if records else 0


def _last_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    return next(reversed(records)) if records else 0


def patch_moto() -> None:
    models.Shard.get_min_sequence_number = _first_key  # type: ignore[method-assign]
    models.Shard.get_max_sequence_number = _last_key  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    patch_moto()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
