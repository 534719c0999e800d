"""What a fitted pipeline costs to serve (pure: timing only, no I/O): the single-row latency of
its compiled estimator, the real-time path's model part (:mod:`modelkinds`: each kind compiles
and explains itself), with the exact reasons the API gives.

One thread (numpy's BLAS pools limited to one), a fixed set of rows (the first ``ROWS`` test
rows), each row timed ``REPEATS`` times and its median kept, so a burst of other work on a
shared machine does not decide a promotion; the p99 is over the rows (deep paths cost more).
The kind-independent part of the path (turning request fields into the preprocessed row) is
not in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import modelkinds
from training.models import base_estimator

ROWS = 200
REPEATS = 5


@dataclass(frozen=True)
class ServingCost:
    p50_ms: float
    p99_ms: float
    rows: int
    reason_method: str

    def describe(self) -> str:
        return (
            f"p99 {self.p99_ms:.3f} ms, p50 {self.p50_ms:.3f} ms per row over {self.rows} test "
            f"rows (compiled scorer, probability and reasons by {self.reason_method}, one thread)"
        )


def measure(
    pipeline: Any, frame: pd.DataFrame, rows: int = ROWS, repeats: int = REPEATS
) -> ServingCost:
    """The compiled scorer's single-row latency on the first ``rows`` rows of ``frame``."""
    from threadpoolctl import threadpool_limits

    estimator = base_estimator(pipeline)
    compiled = modelkinds.kind_of(estimator).compile(estimator)
    sample = frame.head(rows)
    xt = np.asarray(pipeline.named_steps["preprocess"].transform(sample), dtype=np.float64)
    if xt.shape[0] == 0:
        raise ValueError("no rows to time the compiled scorer on: the test split is empty")
    medians = np.empty(xt.shape[0], dtype=np.float64)
    with threadpool_limits(limits=1):
        compiled.proba(xt[:1])  # first calls allocate
        compiled.contribs(xt[:1])
        for i in range(xt.shape[0]):
            row = xt[i : i + 1]
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                compiled.proba(row)
                compiled.contribs(row)
                times.append(time.perf_counter() - started)
            medians[i] = np.median(times)
    return ServingCost(
        p50_ms=float(np.percentile(medians, 50) * 1e3),
        p99_ms=float(np.percentile(medians, 99) * 1e3),
        rows=int(xt.shape[0]),
        reason_method=compiled.reason_method,
    )
