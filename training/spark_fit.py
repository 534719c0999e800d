"""Training past one machine: a kind's chosen configuration fitted on the Spark cluster (I/O
module: it starts a Spark driver on ``RISKSTREAM_SPARK_MASTER``).

Where it pays: a kind that declares a ``spark_fit`` (XGBoost, through ``xgboost.spark``), at
least ``RISKSTREAM_SPARK_TRAINING_MIN_ROWS`` training rows, and a cluster master. A ``local[...]``
master runs on this machine's cores, which one process already uses without a JVM in between,
so there the fit stays on one machine. The protocol is the same (training.models): the search on
one machine on a sample, then the out-of-fold fits and the refit on all rows on the cluster.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import modelkinds
from riskstream import names
from riskstream.settings import Settings
from training.config import TrainingError
from training.models import Refit

logger = logging.getLogger(__name__)

LABEL = "label"
LOOPBACK_MASTERS = ("spark://127.0.0.1:", "spark://localhost:")
DEFAULT_PYTHON = "python3"  # pyspark's executors' Python when PYSPARK_PYTHON is not set


def is_local_master(master: str) -> bool:
    """``local``, ``local[2]``, ``local[*]``, ``local-cluster[...]``: this machine's cores."""
    return master.strip().startswith("local")


def fits_on_spark(settings: Settings, kind: str, rows: int) -> bool:
    """Whether ``kind`` fits on the Spark cluster for a table of ``rows`` training rows."""
    return (
        modelkinds.get(kind).spark_fit is not None
        and rows >= settings.spark_training_min_rows
        and not is_local_master(settings.spark_master)
    )


def free_task_slots(session: Any) -> int:
    """Task slots of the executors this application holds now: barrier mode runs every XGBoost
    worker at once, so more workers than slots would wait for slots forever."""
    sc = session.sparkContext._jsc.sc()  # the JVM's SparkContext: pyspark does not expose it
    return int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().resourceProfileFromId(0)))


def _session(settings: Settings) -> tuple[Any, bool]:
    """The Spark session on the settings' master, and whether this call started it."""
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    session = (
        SparkSession.builder.master(settings.spark_master)
        .appName(names.SPARK_TRAINING_APP)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    master = session.sparkContext.master
    if master != settings.spark_master:
        raise TrainingError(
            f"this process already runs a Spark session on {master}, so XGBoost cannot fit on "
            f"RISKSTREAM_SPARK_MASTER={settings.spark_master}; train in a process of its own "
            "(as the pipeline's steps do) or raise RISKSTREAM_SPARK_TRAINING_MIN_ROWS"
        )
    session.sparkContext.setLogLevel("WARN")
    if settings.spark_master.startswith(LOOPBACK_MASTERS):
        sc = session.sparkContext
        if sc.pythonExec == DEFAULT_PYTHON:  # the executors are on this machine: our Python
            sc.pythonExec = sys.executable
    return session, before is None


def _workers(session: Any, master: str, wait_seconds: float) -> int:
    deadline = time.monotonic() + wait_seconds
    while (slots := free_task_slots(session)) < 1:
        if time.monotonic() > deadline:
            raise TrainingError(
                f"no executor of the Spark master {master} registered within {wait_seconds:.0f} s: "
                "is a worker running with free cores and memory? (or raise "
                "RISKSTREAM_SPARK_TRAINING_MIN_ROWS to fit on one machine)"
            )
        time.sleep(0.5)
    return slots


@contextmanager
def where_to_fit(
    settings: Settings, kind: str, rows: int, wait_seconds: float = 120.0
) -> Iterator[Refit | None]:
    """None (fit on one machine, as usual) or, when :func:`fits_on_spark`, a :class:`Refit`
    through the kind's ``spark_fit`` on as many workers as the cluster gives free task slots.
    The Spark session starts at the first fit (after the search, which runs here) and is
    stopped after the block if this started it."""
    if not fits_on_spark(settings, kind, rows):
        yield None
        return
    spark_fit = modelkinds.get(kind).spark_fit
    assert spark_fit is not None  # fits_on_spark checked it
    logger.info(
        "%s fits on the Spark cluster %s: %d training rows >= RISKSTREAM_SPARK_TRAINING_MIN_ROWS "
        "(%d); the search runs here on at most %d of them",
        kind,
        settings.spark_master,
        rows,
        settings.spark_training_min_rows,
        settings.spark_training_search_rows,
    )
    where: dict[str, Any] = {"spark_master": settings.spark_master}
    opened: list[tuple[Any, bool]] = []  # (session, whether this started it), once started

    def fit(estimator: Any, t: np.ndarray, y: np.ndarray) -> Any:
        import pandas as pd

        if not opened:
            began = time.perf_counter()
            opened.append(_session(settings))
            where["spark_workers"] = _workers(opened[0][0], settings.spark_master, wait_seconds)
            logger.info(
                "Spark driver on %s ready in %.1f s: %d workers (the executors' free task slots)",
                settings.spark_master,
                time.perf_counter() - began,
                where["spark_workers"],
            )
        session, workers = opened[0][0], int(where["spark_workers"])
        features = [f"f{i}" for i in range(t.shape[1])]
        frame = pd.DataFrame(t, columns=features)
        frame[LABEL] = np.asarray(y, dtype=int)
        began = time.perf_counter()
        fitted = spark_fit(estimator, session.createDataFrame(frame), features, LABEL, workers)
        logger.info(
            "%s fitted with %d workers on %s: %d rows in %.1f s",
            kind,
            workers,
            settings.spark_master,
            len(frame),
            time.perf_counter() - began,
        )
        return fitted

    try:
        yield Refit(fit, settings.spark_training_search_rows, names.FIT_SPARK, where)
    finally:
        if opened and opened[0][1]:
            opened[0][0].stop()
