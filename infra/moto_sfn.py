"""moto's Step Functions as an engine the embedded cloud keeps (patches applied at server start).

moto 5.2 embeds an ASL interpreter (its "parser" backend) that runs executions once
``execute_state_machine`` is switched on. Four things stand between it and a pipeline
orchestrator on a durable cloud; each patch below is small and keeps the wire protocol as is:

- **Executions are on from the start.** The switch picks one of two backend dictionaries for
  every request, so a state machine created before it (or restored after a restart, when the
  switch is back off) would vanish. The embedded cloud switches it on when it starts and makes
  the parser dictionary the one the durable store saves and restores.
- **A retried callback task gets a new token.** moto issues the task token once per state, so a
  retry waited on the token the failed attempt had already answered and failed again at once.
  AWS issues one per attempt; so does this patch.
- **SendTaskFailure keeps its cause** (moto dropped it from the history and the catcher's input).
- **A Parallel passes a branch's ``States.*`` error up** (a task's timeout in a branch): moto
  refused to name it and failed the whole execution past the Parallel's Catch.
- **Executions survive a snapshot.** A running execution holds threads and locks, which cannot be
  pickled: a snapshot keeps its record and its history instead, and one that was running when
  the cloud stopped comes back ``ABORTED`` with a cause saying so. An SQS queue (the step queue)
  is saved without its lock, and gets a new one when restored. Requests replayed from the
  log while the cloud restarts never run a state machine again (no step runs twice): a replayed
  ``StartExecution`` comes back ``ABORTED`` without running, and replayed task answers do
  nothing.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import importlib
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

RESTART_ERROR = "riskstream.CloudRestarted"
RESTART_CAUSE = (
    "the local cloud stopped while this execution ran; an execution does not survive a restart "
    "(the outputs of its finished steps do): start a new one"
)
REPLAY_CAUSE = (
    "restored from the local cloud's log after a restart, not re-run; its history was not kept"
)


class _Replay:
    active = False


_REPLAY = _Replay()


@contextlib.contextmanager
def replaying() -> Iterator[None]:
    """While the durable store replays its log: record executions, never run them."""
    _REPLAY.active = True
    try:
        yield
    finally:
        _REPLAY.active = False


class _Nothing:
    """A callback or map-run pool of an execution that no longer runs: knows no token."""

    def notify(self, callback_id: str, outcome: Any) -> bool:
        return False

    def heartbeat(self, callback_id: str) -> bool:
        return False

    def get(self, key: str) -> None:
        return None

    def get_all(self) -> list[Any]:
        return []


class _History:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def get_event_history(self) -> list[Any]:
        return self.events


class _FinishedEnv:
    def __init__(self, events: list[Any]) -> None:
        self.event_manager = _History(events)
        self.callback_pool_manager = _Nothing()
        self.map_run_record_pool_manager = _Nothing()


class FinishedWorker:
    """Stands in for an execution's worker once the cloud has restarted: its history only."""

    def __init__(self, events: list[Any]) -> None:
        self.env = _FinishedEnv(events)

    def stop(self, stop_date: Any, error: Any, cause: Any) -> None:
        return None


def _execution_getstate(self: Any) -> dict[str, Any]:
    state = dict(self.__dict__)
    worker = state.get("exec_worker")
    if worker is not None and not isinstance(worker, FinishedWorker):
        env = getattr(worker, "env", None)
        events = env.event_manager.get_event_history() if env is not None else []
        state["exec_worker"] = FinishedWorker(copy.deepcopy(list(events)))
    return state


def _execution_setstate(self: Any, state: dict[str, Any]) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus

    self.__dict__.update(state)
    if self.exec_status == ExecutionStatus.RUNNING:
        _abort(self, RESTART_CAUSE)


def _queue_getstate(self: Any) -> dict[str, Any]:
    state = dict(self.__dict__)
    state.pop("_messages_lock", None)
    return state


def _queue_setstate(self: Any, state: dict[str, Any]) -> None:
    import threading

    self.__dict__.update(state)
    self._messages_lock = threading.Condition()


def _abort(execution: Any, cause: str) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = execution.stop_date or datetime.datetime.now(tz=datetime.UTC)
    execution.error = RESTART_ERROR
    execution.cause = cause
    if execution.exec_worker is None:
        execution.exec_worker = FinishedWorker([])


def patch_queues() -> None:
    """SQS queues, which every provisioned cloud has (the step worker's), pickle without their
    lock and get a new one when read: the durable store can snapshot them."""
    from moto.sqs.models import Queue

    Queue.__getstate__ = _queue_getstate  # type: ignore[attr-defined]
    Queue.__setstate__ = _queue_setstate  # type: ignore[attr-defined]


def patch_stepfunctions() -> None:
    """Apply the patches above (idempotent); called by infra.moto_server before it serves."""
    import moto.stepfunctions as package
    from moto.core.config import default_user_config
    from moto.stepfunctions import responses
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.common.retry.retry_outcome import RetryOutcome
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.backend.execution import Execution

    if getattr(ExecutionState, "_riskstream_patched", False):
        return
    ExecutionState._riskstream_patched = True  # type: ignore[attr-defined]

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    # the durable store saves and restores moto.backends.get_backend("stepfunctions")
    package.stepfunctions_backends = parser_models.stepfunctions_parser_backends  # type: ignore[attr-defined]
    # ... and whose URLs the server routes: the parser backend's are the plain backend's
    parser_models.StepFunctionsParserBackend._url_module = property(  # type: ignore[assignment]
        lambda self: importlib.import_module("moto.stepfunctions.urls")
    )

    handle_retry = ExecutionState._handle_retry

    def _handle_retry(self: Any, env: Any, failure_event: Any) -> Any:
        outcome = handle_retry(self, env, failure_event)
        context = env.states.context_object.context_object_data
        if outcome == RetryOutcome.CanRetry and "Task" in context:
            env.callback_pool_manager.add(env.states.context_object.update_task_token())
        return outcome

    ExecutionState._handle_retry = _handle_retry  # type: ignore[method-assign]

    def send_task_failure(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    responses.StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]

    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    class PropagatedErrorName(ErrorName):
        """A branch's ``States.*`` error, passed up by its Parallel as it is."""

    def branch_error(error_name: str | None) -> ErrorName:
        if error_name and error_name.startswith("States."):
            return PropagatedErrorName(error_name=error_name)
        return CustomErrorName(error_name=error_name)

    branches_decl.CustomErrorName = branch_error  # type: ignore[attr-defined]

    Execution.__getstate__ = _execution_getstate  # type: ignore[attr-defined]
    Execution.__setstate__ = _execution_setstate  # type: ignore[attr-defined]

    backend = parser_models.StepFunctionsParserBackend
    start = Execution.start

    def _start(self: Any) -> None:
        if _REPLAY.active:
            _abort(self, REPLAY_CAUSE)
            return
        start(self)

    Execution.start = _start  # type: ignore[method-assign]
    for name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        original = getattr(backend, name)

        def _answer(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if _REPLAY.active:
                return None  # the execution it answered did not survive the restart
            return _original(self, *args, **kwargs)

        setattr(backend, name, _answer)
