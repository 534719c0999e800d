"""An ETL job's progress, read from Spark's status tracker while it runs: the tasks of the job's
stages done out of those known so far (``riskstream.progress``: a log line every half minute
and the file `riskstream run` shows). I/O module: reads a live SparkContext.

Spark plans a job's stages as it goes, so the total grows when a new stage appears and the ETA
is that of the stages planned so far; it is a sign of life and of pace, not a promise."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from riskstream.background import in_thread
from riskstream.progress import Progress

logger = logging.getLogger(__name__)


def stage_counts(tracker: Any, group: str) -> tuple[int, int]:
    """(tasks done, tasks in all) over every stage of the jobs of ``group`` known so far."""
    done = total = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        for stage_id in job.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is None:
                continue
            total += int(stage.numTasks)
            done += int(stage.numCompletedTasks)
    return done, total


@contextmanager
def spark_progress(
    spark: Any, state_dir: Path | None, label: str, every: float = 1.0
) -> Iterator[Progress]:
    """While the block runs, the Spark jobs it starts (in this thread) are a job group whose
    tasks a watcher thread counts every ``every`` seconds into a :class:`Progress`."""
    context = spark.sparkContext
    group = f"{label}-{uuid.uuid4().hex[:8]}"
    context.setJobGroup(group, label)
    progress = Progress.in_state_dir(state_dir, label, None, "tasks")
    stop = threading.Event()
    tracker = context.statusTracker()

    def watch() -> None:
        while not stop.wait(every):
            try:
                done, total = stage_counts(tracker, group)
            except Exception as exc:  # the tracker only informs; the job goes on regardless
                logger.debug("no Spark status for %s: %s", label, exc)
                continue
            if total:
                progress.set(done, total=total)

    try:
        with in_thread(watch, stop.set, name=f"progress-{label}", join_timeout=5):
            yield progress
    finally:
        try:
            progress.set(*stage_counts(tracker, group))
        except Exception:
            logger.debug("no final Spark status for %s", label)
        progress.close()
