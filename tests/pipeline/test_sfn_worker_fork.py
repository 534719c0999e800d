"""The step worker runs each step in a process of its own, forked from its fork server: the
answer, the step's log, its exit handlers, and a step whose process dies without an answer."""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.sfn_worker import WORKER_ERROR, Worker
from riskstream.settings import Settings

pytestmark = pytest.mark.integration  # a fork server and its children: processes


def _said(settings: Settings, ctx: Any) -> dict[str, Any]:
    marker = Path(ctx.param("dir")) / "exit-handler-ran"
    atexit.register(marker.write_text, "yes")
    print("a line on stdout", flush=True)
    return {"pid": os.getpid()}


def _dies(settings: Settings, ctx: Any) -> dict[str, Any]:
    os._exit(3)


STEPS = {"said": _said, "dies": _dies}


def _message(step: str, directory: Path) -> dict[str, Any]:
    return {
        "execution": "arn:aws:states:us-east-1:000000000000:execution:m:run-1",
        "state": step.title(),
        "step": step,
        "input": {"params": {"dir": str(directory)}},
    }


def test_a_forked_step_answers_logs_and_runs_its_exit_handlers(tmp_path: Path) -> None:
    settings = Settings.from_mapping({"RISKSTREAM_STATE_DIR": str(tmp_path / "state")})
    worker = Worker(settings, [f"{__name__}:STEPS"], concurrency=1, preload=(__name__,))
    logs = tmp_path / "state" / "logs" / "sfn-steps" / "run-1"

    answer = worker._run_in_child(_message("said", tmp_path))
    assert answer["ok"]["pid"] not in (os.getpid(), None)  # a process of its own
    assert (tmp_path / "exit-handler-ran").read_text() == "yes"
    log = (logs / "Said.1.log").read_text()
    assert "Said: running said (attempt 1)" in log and "a line on stdout" in log

    died = worker._run_in_child(_message("dies", tmp_path))
    assert died["error"] == WORKER_ERROR
    assert "exited with code 3 without an answer" in died["cause"]
