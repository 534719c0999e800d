"""Build the Airflow DAG from the ASL state machine, so the two can never drift apart.

Mapping (ASL -> Airflow):
- Task      -> a PythonOperator that runs the named riskstream step (one function call);
- Parallel  -> its branches' tasks side by side between the states before and after it;
- Choice    -> a branch task that evaluates the rule on earlier results;
- Retry     -> retries=MaxAttempts, retry_delay=IntervalSeconds,
               retry_exponential_backoff=BackoffRate, max_retry_delay=MaxDelaySeconds
               (a step's ConfigurationError is never retried: see :func:`run_step`);
- Catch     -> a failure-handler task with trigger rule ``one_failed`` downstream of every
               catching task, then a task standing for the Fail state that fails the run;
- Succeed   -> an empty task.
Nothing here touches the network or the metadata database at parse time.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.asl import (
    ASL_PATH,
    AslError,
    RetryPolicy,
    Step,
    Workflow,
    load_workflow,
    task_id_for,
)

logger = logging.getLogger(__name__)

PIPELINE_DAG_ID = "credit_risk_pipeline"
START_DATE = datetime(2025, 1, 1)


StepFunction = Callable[..., dict[str, Any]]


def build_pipeline_dag(
    dag_id: str = PIPELINE_DAG_ID,
    asl_path: Path = ASL_PATH,
    params: dict[str, Any] | None = None,
    schedule: str | None = None,
    steps: Mapping[str, StepFunction] | None = None,
) -> Any:
    """The DAG for the ASL at ``asl_path``; each Task runs ``steps[<its step name>]``
    (default: the pipeline's own steps, :data:`pipeline.steps.STEPS`)."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
    from airflow.sdk import DAG

    from pipeline.steps import STEPS

    workflow = load_workflow(asl_path)
    registry = STEPS if steps is None else steps
    all_states = sorted(workflow.steps)
    with DAG(
        dag_id=dag_id,
        description="Credit-risk pipeline mirroring pipeline/state_machine.asl.json",
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        params=pipeline_params(params),
        tags=["riskstream", "step-functions-mirror"],
        doc_md=__doc__,
    ) as dag:
        tasks: dict[str, Any] = {}
        for name, step in workflow.steps.items():
            tasks[name] = _operator(
                step,
                workflow,
                all_states,
                registry,
                PythonOperator,
                BranchPythonOperator,
                EmptyOperator,
            )
        for upstream, downstream in sorted(workflow.edges):
            tasks[upstream] >> tasks[downstream]
        for name, step in workflow.steps.items():
            if step.catch_to:
                tasks[name] >> tasks[step.catch_to]
    return dag


def pipeline_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """DAG params with defaults, shown in the trigger form."""
    from airflow.sdk import Param

    import modelkinds
    from pipeline.steps import default_params
    from riskstream.names import SOURCES
    from riskstream.settings import PORTFOLIO_RE

    d = default_params()
    # name -> (JSON type, description, other Param keywords); the default is default_params()'s
    declarations: dict[str, tuple[str, str, dict[str, Any]]] = {
        "source": ("string", "where the events come from", {"enum": list(SOURCES)}),
        "portfolio": (
            "string",
            "the portfolio this run trains and scores (empty = the source's name, "
            "or for csv the mapping's 'portfolio' or the file's name)",
            {"pattern": r"^$|" + PORTFOLIO_RE.pattern},
        ),
        "accounts": (
            "integer",
            "synthetic: number of accounts",
            {"minimum": 1, "maximum": 1_000_000},
        ),
        "months": ("integer", "synthetic: months of activity", {"minimum": 3, "maximum": 60}),
        "seed": ("integer", "synthetic: random seed", {}),
        "taiwan_path": ("string", "taiwan: CSV path (empty = the bundled data set)", {}),
        "csv_path": ("string", "csv: your file", {}),
        "csv_mapping": ("string", "csv: mapping JSON file (id, time, label, attributes)", {}),
        "models": (
            "string",
            f"comma-separated model set, from {', '.join(modelkinds.names())}",
            {"pattern": modelkinds.models_pattern()},
        ),
        "train_budget_seconds": (
            "integer",
            "upper guard on search seconds per model (the trial count bounds it)",
            {"minimum": 5},
        ),
        "max_trials": (
            "integer",
            "search trials per model: what bounds the search (the first is the kind's default)",
            {"minimum": 1},
        ),
        "promote_override": (
            "boolean",
            "promote even when the champion cannot be evaluated or the challenger is over the "
            "serving budget (recorded)",
            {},
        ),
        "min_ks": (
            "number",
            "promotion gate: minimum KS of the challenger",
            {"minimum": 0, "maximum": 1},
        ),
        "max_ece": (
            "number",
            "promotion gate: maximum calibration error (ECE)",
            {"minimum": 0, "maximum": 1},
        ),
        "reset_bookmarks": ("boolean", "reprocess every raw partition", {}),
    }
    params = {
        name: Param(d[name], type=type_, description=description, **extra)
        for name, (type_, description, extra) in declarations.items()
    }
    for key, value in (overrides or {}).items():
        params[key] = value
    return params


def _operator(
    step: Step,
    workflow: Workflow,
    all_states: list[str],
    registry: Mapping[str, StepFunction],
    python_operator: Any,
    branch_operator: Any,
    empty_operator: Any,
) -> Any:
    common: dict[str, Any] = {"task_id": step.task_id, "doc_md": step.comment or None}
    if step.retry is not None:
        common.update(retry_args(step.retry))
    upstream = workflow.upstream(step.name)
    if step.name in workflow.failure_handlers:
        common["trigger_rule"] = "one_failed"
    elif len(upstream) > 1:
        # a join after a Parallel or a Choice: run when nothing failed and one path ran
        common["trigger_rule"] = "none_failed_min_one_success"

    if step.kind == "Task":
        return python_operator(
            python_callable=functools.partial(run_step, _lookup(registry, step)),
            op_kwargs={"state": step.name, "states": all_states},
            **common,
        )
    if step.kind == "Choice":
        return branch_operator(
            python_callable=choose,
            op_kwargs={
                "variable": step.choice_variable,
                "if_true": task_id_for(step.choice_true or ""),
                "otherwise": task_id_for(step.choice_default or ""),
                "states": all_states,
            },
            **common,
        )
    if step.kind == "Fail":
        return python_operator(python_callable=fail_run, op_kwargs={"state": step.name}, **common)
    return empty_operator(**common)


def retry_args(retry: RetryPolicy) -> dict[str, Any]:
    """An ASL Retry as Airflow operator arguments (a backoff rate of 1 or less means none)."""
    args: dict[str, Any] = {
        "retries": retry.max_attempts,
        "retry_delay": timedelta(seconds=retry.interval_seconds),
        "retry_exponential_backoff": retry.backoff_rate if retry.backoff_rate > 1 else 0,
    }
    if retry.max_delay_seconds is not None:
        args["max_retry_delay"] = timedelta(seconds=retry.max_delay_seconds)
    return args


def _lookup(registry: Mapping[str, StepFunction], step: Step) -> StepFunction:
    if step.step not in registry:
        raise AslError(
            f"state {step.name!r} runs step {step.step!r}, which is not a pipeline step; "
            f"known steps: {', '.join(sorted(registry))}"
        )
    return registry[step.step]


# ---- what runs inside the tasks -----------------------------------------------------------------


def _context_for(context: dict[str, Any], states: list[str]) -> Any:
    from pipeline.steps import StepContext

    ti = context["ti"]
    results = {}
    for state in states:
        value = ti.xcom_pull(task_ids=task_id_for(state))
        if value is not None:
            results[state] = value
    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    run_date = (moment or datetime.now()).strftime("%Y-%m-%d")
    return StepContext(
        run_id=str(context.get("run_id")),
        run_date=run_date,
        params=dict(context.get("params") or {}),
        results=results,
    )


def run_step(func: StepFunction, state: str, states: list[str], **context: Any) -> dict[str, Any]:
    """Run one riskstream step for an ASL Task state (called by Airflow in the worker).

    A :class:`~riskstream.errors.ConfigurationError` (a bad mapping, flag or column) fails the
    task at once, without its retries: the same configuration cannot succeed on a retry."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from pipeline import steps as step_module
    from riskstream.errors import ConfigurationError
    from riskstream.logs import configure_logging
    from riskstream.settings import Settings

    configure_logging()
    settings = Settings.from_env()  # the task is an entry point
    ctx = _context_for(context, states)
    try_number = int(getattr(context.get("ti"), "try_number", 1) or 1)
    logger.info("%s: running %s (attempt %s)", state, func.__name__, try_number)
    try:
        result = func(settings, ctx)
    except step_module.StepSkipped as exc:
        raise AirflowSkipException(str(exc)) from None
    except ConfigurationError as exc:
        step_module.record_failure(settings, ctx, state, try_number, exc)
        logger.error("%s: configuration error, not retried: %s", state, exc)
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        step_module.record_failure(settings, ctx, state, try_number, exc)
        raise
    if try_number > 1:
        step_module.clear_failure(settings, ctx, state)
    logger.info("%s: done: %s", state, result)
    return result


def choose(variable: str, if_true: str, otherwise: str, states: list[str], **context: Any) -> str:
    """Evaluate an ASL Choice rule (BooleanEquals true on a ``$.results...`` path)."""
    ctx = _context_for(context, states)
    value: Any = {"results": dict(ctx.results), "params": dict(ctx.params)}
    for part in variable.removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    chosen = if_true if value is True else otherwise
    logger.info("choice on %s = %r -> %s", variable, value, chosen)
    return chosen


def fail_run(state: str, **context: Any) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        f"{state}: a pipeline step failed; see the handle_failure task's log for which and why"
    )


def build_linear_dag(
    dag_id: str,
    steps: list[tuple[str, StepFunction]],
    schedule: str | None,
    description: str,
    retries: int = 2,
    retry_delay_seconds: float = 30,
) -> Any:
    """A simple chain of riskstream steps (for the scheduled landing and scoring DAGs)."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, chain

    states = [name for name, _ in steps]
    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        params=pipeline_params(),
        tags=["riskstream"],
        default_args=retry_args(
            RetryPolicy(
                interval_seconds=retry_delay_seconds,
                backoff_rate=2.0,
                max_attempts=retries,
                max_delay_seconds=10 * 60,
            )
        ),
    ) as dag:
        chain(
            *[
                PythonOperator(
                    task_id=task_id_for(name),
                    python_callable=functools.partial(run_step, func),
                    op_kwargs={"state": name, "states": states},
                )
                for name, func in steps
            ]
        )
    return dag
