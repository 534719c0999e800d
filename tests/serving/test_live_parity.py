"""Batch and live agree: a synthetic portfolio with duplicated and late events goes through the
ETL transforms, the Spark features job and the batch scoring path, and, in stream order, through
the live scorer's per-account state (serving.livestate) and its compiled scorer. Every account's
features and PD must be equal (1e-9) at the same cut-off."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession

from benchmarks.fixtures import batch_and_live, parity_pds, parity_stream, same_value
from serving.livestate import feature_rows
from tests.etl.conftest import spark  # noqa: F401  (the session's Spark fixture)

pytestmark = pytest.mark.integration  # Spark: a JVM


@pytest.fixture(scope="module")
def world(spark: SparkSession) -> dict[str, Any]:  # noqa: F811
    return batch_and_live(spark, parity_stream(accounts=120, months=8))


def test_every_account_has_the_same_features_live_and_batch(world: dict[str, Any]) -> None:
    batch, states, obs = world["batch"], world["states"], world["obs"]
    assert len(batch) > 100
    ordered = sorted(states)
    live = dict(zip(ordered, feature_rows([states[a] for a in ordered], 6, obs), strict=True))
    scored = {a for a, row in live.items() if not isinstance(row, str)}
    assert scored == set(batch)  # the same population: opened before, not defaulted before
    for account in sorted(batch):
        row = live[account]
        assert not isinstance(row, str)
        for name in world["columns"]:
            if name != "account_id":
                assert same_value(row.get(name), batch[account][name]), (account, name)
    # the live state's own cut-off is the pipeline's default for accounts billed to the end
    assert sum(states[a].obs_date() == obs for a in batch) > len(batch) // 2


def test_every_account_has_the_same_pd_live_and_batch(world: dict[str, Any]) -> None:
    accounts, batch_pd, live_pd = parity_pds(world)
    off = np.abs(batch_pd - live_pd) > 1e-9
    assert not off.any(), [a for a, bad in zip(accounts, off, strict=True) if bad]
