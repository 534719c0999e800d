"""The step worker: runs the steps Step Functions sends, through the registry the DAG uses.

``python -m pipeline.sfn_worker`` (a managed service: ``riskstream sfn-worker up|down|status``,
started by ``riskstream run --engine stepfunctions``) polls the queue of pipeline steps
(:func:`riskstream.names.step_queue_name`). Each message names a step, its state, the state's
input (params, run date, earlier results) and a task token (:func:`pipeline.asl.callback_definition`
writes them). The worker checks the execution still runs, runs the step in a process of its own
(as an Airflow task runs, forked from a server that imported the steps' libraries once; its log
goes to ``<state_dir>/logs/sfn-steps/<execution>/``), beats the task's heartbeat meanwhile, and
answers ``SendTaskSuccess`` with the step's result or ``SendTaskFailure`` with the error:
retrying, catching and choosing are the engine's.

It polls without waiting on the server (``WaitTimeSeconds=0``, backing off while idle): the
durable cloud answers one request at a time, and a long poll would hold every other client for
its whole wait. ``GET /health`` on ``RISKSTREAM_SFN_WORKER_URL`` (127.0.0.1 only) says what it
runs. Why callbacks and not Activities: docs/adr/0008-step-functions-worker.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.services import ManagedService, loopback_address, module_service
from riskstream import names
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"
WORKER_ERROR = "riskstream.WorkerError"  # the step's process died without an answer
MIN_POLL, MAX_POLL = 0.2, 2.0  # seconds between polls: busy, and idle at most
# What the pipeline's steps import (MLflow, scikit-learn, boto3: 5-18 s each on a busy 2-core
# machine). The worker's fork server imports them once, in the background, and every step's
# process is forked from it instead of importing them again.
PRELOAD = (
    "pipeline.steps",
    "ingestion.tasks",
    "etl.tasks",
    "training.train",
    "training.registry_io",
    "serving.tasks",
)
CAUSE_LIMIT = 32_000  # Step Functions takes at most 32,768 characters of cause


def worker_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of ``settings.sfn_worker_url`` (:class:`AddressError` unless loopback)."""
    return loopback_address(settings.sfn_worker_url, "RISKSTREAM_SFN_WORKER_URL")


def worker_service(
    settings: Settings, extra_steps: Sequence[str] = (), concurrency: int = 4, preload: bool = True
) -> ManagedService:
    """The step worker as a managed service; ``extra_steps`` (``module:NAME`` of a mapping of
    step name -> function) add steps to the pipeline's own (the tests' stand-in steps);
    ``preload=False`` when only such light steps run (the fork server then imports nothing)."""
    argv = ["pipeline.sfn_worker", "--concurrency", str(concurrency)]
    for extra in extra_steps:
        argv += ["--steps", extra]
    if not preload:
        argv.append("--no-preload")
    return module_service(settings, "sfn-worker", argv, worker_address(settings), 60, HEALTH_PATH)


# ---- one step, in its own process ------------------------------------------------------------
def registry(extra_steps: Sequence[str] = ()) -> Mapping[str, Any]:
    """The pipeline's steps (pipeline.steps.STEPS) and any ``module:NAME`` extra mappings."""
    from pipeline.steps import STEPS

    steps: dict[str, Any] = {}
    for extra in extra_steps:
        module, _, attribute = extra.partition(":")
        steps.update(getattr(importlib.import_module(module), attribute))
    return _Chain(steps, STEPS)


class _Chain(Mapping[str, Any]):
    def __init__(self, first: Mapping[str, Any], then: Mapping[str, Any]) -> None:
        self.first, self.then = first, then

    def __getitem__(self, key: str) -> Any:
        return self.first[key] if key in self.first else self.then[key]

    def __iter__(self) -> Any:
        return iter({**dict(self.then), **self.first})

    def __len__(self) -> int:
        return len({**dict(self.then), **self.first})


def step_context(message: Mapping[str, Any]) -> Any:
    """The :class:`~pipeline.steps.StepContext` of a message: a Parallel's result (a list of
    its branches' ``{state: result}``) is spread into the results by state, as the DAG has them."""
    from pipeline.steps import StepContext

    state_input = message.get("input") or {}
    results: dict[str, Any] = {}
    for name, value in (state_input.get("results") or {}).items():
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for branch in value:
                results.update(branch)
        results[name] = value
    return StepContext(
        run_id=str(message["execution"]).rsplit(":", 1)[-1],
        run_date=str(state_input.get("run_date") or time.strftime("%Y-%m-%d")),
        params=dict(state_input.get("params") or {}),
        results=results,
    )


def run_message(
    settings: Settings, message: Mapping[str, Any], steps: Mapping[str, Any]
) -> dict[str, Any]:
    """Run the message's step; the answer: ``{"ok": result}`` or ``{"error", "cause"}``.

    Mirrors the DAG's task (:func:`pipeline.dag_builder.run_step`): a skipped step answers
    ``{"skipped": true}``, a configuration error fails with
    :data:`riskstream.names.STEP_ERROR_CONFIGURATION` (the rendered ASL never retries it), any
    other error with its type's name; a failure leaves the note handle_failure reads."""
    from pipeline import steps as step_module
    from riskstream.errors import ConfigurationError

    state = str(message["state"])
    ctx = step_context(message)
    attempt = int(message.get("attempt") or 0) + 1
    if message["step"] not in steps:
        known = ", ".join(sorted(steps))
        return {"error": WORKER_ERROR, "cause": f"unknown step {message['step']!r}; known: {known}"}
    logger.info("%s: running %s (attempt %s)", state, message["step"], attempt)
    try:
        result = steps[message["step"]](settings, ctx)
    except step_module.StepSkipped as exc:
        logger.info("%s: skipped: %s", state, exc)
        return {"ok": {"skipped": True, "reason": str(exc)}}
    except ConfigurationError as exc:
        step_module.record_failure(settings, ctx, state, attempt, exc)
        logger.error("%s: configuration error, not retried: %s", state, exc)
        return {"error": names.STEP_ERROR_CONFIGURATION, "cause": str(exc)[:CAUSE_LIMIT]}
    except Exception as exc:
        step_module.record_failure(settings, ctx, state, attempt, exc)
        logger.exception("%s: failed", state)
        return {"error": type(exc).__name__, "cause": str(exc)[:CAUSE_LIMIT]}
    if attempt > 1:
        step_module.clear_failure(settings, ctx, state)
    logger.info("%s: done: %s", state, result)
    return {"ok": result}


def forked_step(
    message: Mapping[str, Any],
    answer_path: str,
    log_path: str,
    extra_steps: Sequence[str],
    env: Mapping[str, str],
) -> None:
    """One step in a process of its own, forked from the worker's fork server: its output
    appended to ``log_path``, ``env`` (the worker's settings) in its environment, the answer
    written to ``answer_path``. Python's exit handlers run at the end, as in a process that
    exits normally (a fork server's child otherwise skips them)."""
    import atexit

    from riskstream.logs import configure_logging

    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(env)
    try:
        configure_logging()
        settings = Settings.from_env(dotenv=None)  # a process of its own: an entry point
        answer = run_message(settings, message, registry(extra_steps))
        Path(answer_path).write_text(json.dumps(answer, default=str))
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


# ---- the service ------------------------------------------------------------------------------
class Worker:
    """Polls the step queue and runs up to ``concurrency`` steps at once."""

    def __init__(
        self,
        settings: Settings,
        extra_steps: Sequence[str] = (),
        concurrency: int = 4,
        preload: Sequence[str] = PRELOAD,
    ) -> None:
        import multiprocessing

        self.settings = settings
        self.extra_steps = tuple(extra_steps)
        # each step in a process of its own, forked from a server that imported ``preload``
        # once (a fresh interpreter, started before any step: no thread of ours is forked)
        self.processes = multiprocessing.get_context("forkserver")
        self.processes.set_forkserver_preload(list(preload))
        self.slots = threading.BoundedSemaphore(concurrency)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.running: dict[str, str] = {}  # state@execution -> step
        self.counts = {"succeeded": 0, "failed": 0, "stale": 0}
        self.queue_url = ""

    def health(self) -> dict[str, Any]:
        with self.lock:
            return {
                "status": "ok",
                "queue": self.queue_url,
                "running": dict(self.running),
                **self.counts,
            }

    def poll_forever(self) -> None:
        from riskstream.clients import make_client

        sqs = make_client(self.settings, "sqs")
        self.queue_url = self._wait_for_queue(sqs)
        logger.info("polling %s", self.queue_url)
        delay = MIN_POLL
        while not self.stopping.is_set():
            if not self.slots.acquire(timeout=1.0):
                continue  # every slot busy
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0
                ).get("Messages", [])
            except Exception:
                logger.warning("cannot read the step queue; trying again", exc_info=True)
                messages = []
            if not messages:
                self.slots.release()
                self.stopping.wait(delay)
                delay = min(delay * 1.5, MAX_POLL)
                continue
            delay = MIN_POLL
            message = messages[0]
            # taken at most once: a step that dies is answered by the heartbeat's timeout
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            threading.Thread(target=self._handle, args=(message["Body"],), daemon=True).start()

    def _wait_for_queue(self, sqs: Any) -> str:
        """The step queue's URL, once the cloud answers and the queue exists (provisioning
        creates it: `riskstream provision`, `riskstream run`)."""
        name = names.step_queue_name(self.settings)
        said = False
        while not self.stopping.is_set():
            try:
                return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
            except Exception as exc:
                if not said:
                    logger.warning("waiting for the step queue %s (%s)", name, exc)
                    said = True
            self.stopping.wait(MAX_POLL)
        return ""

    def _handle(self, body: str) -> None:
        try:
            self._answer(json.loads(body))
        except Exception:
            logger.exception("could not handle a step message: %s", body[:500])
        finally:
            self.slots.release()

    def _answer(self, message: dict[str, Any]) -> None:
        from riskstream.clients import make_client

        sfn = make_client(self.settings, "stepfunctions")
        key = f"{message['state']}@{str(message['execution']).rsplit(':', 1)[-1]}"
        status = sfn.describe_execution(executionArn=message["execution"])["status"]
        if status != "RUNNING":  # e.g. a message of an execution the cloud's restart ended
            logger.warning("dropping %s: its execution is %s", key, status)
            with self.lock:
                self.counts["stale"] += 1
            return
        with self.lock:
            self.running[key] = str(message["step"])
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(message["token"], done), daemon=True)
        beat.start()
        try:
            answer = self._run_in_child(message)
        finally:
            done.set()
            with self.lock:
                self.running.pop(key, None)
        token = message["token"]
        if "ok" in answer:
            sfn.send_task_success(taskToken=token, output=json.dumps(answer["ok"], default=str))
            outcome = "succeeded"
        else:
            sfn.send_task_failure(taskToken=token, error=answer["error"], cause=answer["cause"])
            outcome = "failed"
        with self.lock:
            self.counts[outcome] += 1
        logger.info("%s: %s", key, outcome)

    def _beat(self, token: str, done: threading.Event) -> None:
        from pipeline.asl import HEARTBEAT_SECONDS
        from riskstream.clients import make_client

        sfn = make_client(self.settings, "stepfunctions")
        while not done.wait(HEARTBEAT_SECONDS / 6):
            try:
                sfn.send_task_heartbeat(taskToken=token)
            except Exception as exc:
                logger.debug("heartbeat not taken (%s)", exc)

    def _run_in_child(self, message: dict[str, Any]) -> dict[str, Any]:
        execution = str(message["execution"]).rsplit(":", 1)[-1]
        attempt = int(message.get("attempt") or 0) + 1
        logs = self.settings.state_dir / "logs" / "sfn-steps" / execution
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{message['state']}.{attempt}.log"
        answer_path = logs / f"{message['state']}.{attempt}.answer.json"
        # by its module's own name (the worker runs as __main__), so the fork server finds it
        from pipeline.sfn_worker import forked_step

        process = self.processes.Process(
            target=forked_step,
            args=(
                message,
                str(answer_path),
                str(log_path),
                self.extra_steps,
                self.settings.to_env(),
            ),
            name=f"step-{message['state']}",
        )
        process.start()
        process.join()
        try:
            answer: dict[str, Any] = json.loads(answer_path.read_text())
            return answer
        except (OSError, ValueError):
            return {
                "error": WORKER_ERROR,
                "cause": f"the step's process exited with code {process.exitcode} without an "
                f"answer; its log: {log_path}",
            }

    def warm_up(self) -> None:
        """Start the fork server now, so that it imports ``preload`` while the worker waits for
        its first step (a step that comes sooner waits for it)."""
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except Exception:
            logger.warning("could not start the fork server ahead of the steps", exc_info=True)


class _Health(BaseHTTPRequestHandler):
    worker: Worker

    def do_GET(self) -> None:
        if self.path != HEALTH_PATH:
            self.send_error(404)
            return
        body = json.dumps(self.worker.health()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve(
    settings: Settings,
    extra_steps: Sequence[str],
    concurrency: int,
    preload: Sequence[str] = PRELOAD,
) -> None:
    worker = Worker(settings, extra_steps, concurrency, preload)
    threading.Thread(target=worker.warm_up, daemon=True, name="fork-server").start()
    host, port = worker_address(settings)
    handler = type("Health", (_Health,), {"worker": worker})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("step worker on %s:%s", host, port)
    try:
        worker.poll_forever()
    finally:
        server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline.sfn_worker", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=4, help="steps run at once")
    parser.add_argument("--steps", action="append", default=[], help="module:NAME extra steps")
    parser.add_argument(
        "--no-preload",
        action="store_true",
        help="import nothing ahead of the steps (for light steps only)",
    )
    args = parser.parse_args(argv)
    from riskstream.logs import configure_logging

    configure_logging()
    preload = () if args.no_preload else PRELOAD
    serve(Settings.from_env(dotenv=None), args.steps, max(1, args.concurrency), preload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
