"""`riskstream run`: the main job end to end, driven through Airflow (what `make run` calls).

Starts the local cloud, provisions it, starts MLflow and Airflow, triggers the pipeline DAG
through Airflow's REST API so that Airflow's scheduler runs every task, follows it, and ends with
a summary. Phase timings are saved to ``<state_dir>/runs/last-run.json`` for the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from typing import Any

import modelkinds
from riskstream import names
from riskstream.commands import CommandError, user_errors
from riskstream.names import DEFAULT_SOURCE, SOURCES
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}
ENGINES = ("airflow", "stepfunctions")


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="start the cloud and services, then run the pipeline end to end through Airflow",
        description="What `make run` does after set-up. Parameters become the DAG run's params.",
    )
    run.add_argument("--source", choices=SOURCES, default=DEFAULT_SOURCE)
    run.add_argument(
        "--portfolio",
        default=None,
        help="the portfolio this run trains and scores (default: the source's name; csv: the "
        "mapping's 'portfolio', else the file's name)",
    )
    run.add_argument("--accounts", type=int, default=None, help="synthetic: number of accounts")
    run.add_argument("--months", type=int, default=None, help="synthetic: months of activity")
    run.add_argument(
        "--models", type=modelkinds.models_option, default=None, help=modelkinds.models_help()
    )
    run.add_argument(
        "--path",
        default=None,
        help="csv: your .csv or .parquet file; taiwan: the UCI CSV (default: the shipped copy)",
    )
    run.add_argument("--mapping", default=None, help="csv: mapping JSON file")
    # the old spellings, kept working (with a warning) but no longer shown
    run.add_argument("--csv-path", dest="old_path", default=None, help=argparse.SUPPRESS)
    run.add_argument("--csv-mapping", dest="old_mapping", default=None, help=argparse.SUPPRESS)
    run.add_argument(
        "--timeout",
        type=float,
        default=6 * 3600,
        help="give up following the run after this many s (it goes on in the orchestrator); "
        "the default, 6 hours, covers a 200,000-account portfolio on a 2-core machine",
    )
    run.add_argument(
        "--engine",
        choices=ENGINES,
        default=ENGINES[0],
        help="the orchestrator: Airflow (default) or the local cloud's Step Functions, its steps "
        "run by the step worker (`riskstream sfn-worker`)",
    )
    run.set_defaults(func=run_cmd)


STALE_SECONDS = 1800.0  # a phase silent this long (its process gone) is no longer shown


@dataclass(eq=False)
class ProgressPrinter:
    """While the orchestrator runs the steps, their progress (``riskstream.progress``: done of
    total, rate, ETA) on the console. On a terminal one status line is rewritten in place; in a
    log (not a terminal) each running phase gets a plain line every ``every`` seconds."""

    state_dir: Any
    since: float
    _: KW_ONLY
    tty: bool | None = None
    every: float = 30.0
    out: Any = None

    def __post_init__(self) -> None:
        import sys

        self.out = self.out or sys.stdout
        self.tty = self.out.isatty() if self.tty is None else self.tty
        self._said: dict[str, float] = {}
        self._shown = False

    def tick(self) -> None:
        """Show the phases running now (published by this run, not finished, not silent for
        half an hour), their clocks moved on to now."""
        from dataclasses import replace

        from riskstream.progress import read_progress

        now = time.time()
        # a phase between two counts (a long fit) is still running: its clock goes on
        running = [
            replace(s, elapsed=s.elapsed + max(0.0, now - s.updated))
            for s in read_progress(self.state_dir, self.since)
            if not s.finished and now - s.updated < STALE_SECONDS
        ]
        if self.tty:
            import shutil

            width = shutil.get_terminal_size((WIDTH, 20)).columns - 1
            text = " | ".join(s.line() for s in running)
            self.clear()
            if text:
                self.out.write(shorten("    " + text, width))
                self.out.flush()
                self._shown = True
            return
        for snap in running:
            if now - self._said.get(snap.label, 0.0) >= self.every:
                self._said[snap.label] = now
                print(f"    ... {snap.line()}", file=self.out, flush=True)

    def clear(self) -> None:
        """Remove the status line (before any other line is printed)."""
        if self._shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._shown = False


class Phases:
    """Wall time per phase, printed at the end and saved for `make bench`."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float]] = []
        self.started_at: dict[str, float] = {}  # wall-clock start of each phase (time.time())

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.started_at[name] = time.time()
        print(f"==> {name}", flush=True)
        try:
            yield
        finally:
            self.items.append((name, time.monotonic() - started))


def source_conf(args: argparse.Namespace) -> dict[str, str]:
    """The DAG params for ``--path``/``--mapping``, checked here so that a wrong flag, file,
    mapping or column is reported at once, before any service starts (the produce task would
    only fail the same way). Paths are made absolute: Airflow's tasks run elsewhere."""
    from pathlib import Path

    from ingestion.tasks import SourceError, build_source

    for old, new in (("old_path", "path"), ("old_mapping", "mapping")):
        if getattr(args, old, None) is not None:
            logger.warning("--csv-%s is the old spelling of --%s; use --%s", new, new, new)
            if getattr(args, new) is None:
                setattr(args, new, getattr(args, old))
    path = str(Path(args.path).expanduser().resolve()) if args.path else None
    mapping = str(Path(args.mapping).expanduser().resolve()) if args.mapping else None
    if args.source == names.SOURCE_CSV:
        try:
            build_source(names.SOURCE_CSV, path=path, mapping=mapping, portfolio=args.portfolio)
        except SourceError as exc:
            raise CommandError(f"configuration error: {exc}", exit_code=2) from None
        return {"csv_path": str(path), "csv_mapping": str(mapping)}
    if mapping is not None:
        raise CommandError(
            f"--mapping goes with --source csv (the source is {args.source})", exit_code=2
        )
    if path is not None and args.source == names.SOURCE_TAIWAN:
        return {"taiwan_path": path}
    if path is not None:
        raise CommandError(
            f"--path goes with --source csv or taiwan (the source is {args.source})", exit_code=2
        )
    return {}


def run_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from infra.airflow import AirflowClient, AirflowError
    from infra.cloud import cloud_service
    from infra.provision import provision
    from infra.services import ServiceError
    from pipeline.dag_builder import PIPELINE_DAG_ID

    source = source_conf(args)
    portfolio = _portfolio(args, source)
    phases = Phases()
    total_started = time.monotonic()
    with user_errors(ServiceError):
        if settings.target == "embedded":
            with phases.phase("local cloud"):
                cloud_service(settings).up()
        elif settings.target == "localstack":  # LocalStack in host mode, its catalog beside it
            from infra.localstack import localstack_notes, start_localstack

            with phases.phase("localstack"):
                start_localstack(settings)
                for note in localstack_notes(settings):
                    print(f"    {note}")
        with phases.phase("provision"):
            resources = provision(settings)
            created = sum(r.action == "created" for r in resources)
            print(f"    {created} created, {len(resources) - created} already existed")
        with phases.phase("services"):  # the Spark session, MLflow and the engine, side by side
            _start_side_by_side(settings, getattr(args, "engine", "airflow"))

    conf = {
        key: value
        for key, value in {
            "source": args.source,
            "portfolio": args.portfolio,
            "accounts": args.accounts,
            "months": args.months,
            "models": args.models,
            **source,
        }.items()
        if value is not None
    }
    if getattr(args, "engine", "airflow") == "stepfunctions":
        return _run_on_stepfunctions(settings, args, conf, portfolio, phases, total_started)
    client = AirflowClient.for_settings(settings)
    with user_errors(AirflowError):
        client.wait_for_dag(PIPELINE_DAG_ID)
        client.unpause(PIPELINE_DAG_ID)
        run_id = client.trigger(PIPELINE_DAG_ID, conf)
    print(f"==> pipeline: triggered {PIPELINE_DAG_ID} run {run_id} with {conf}")
    print(f"    portfolio {portfolio!r}: its own features, model, champion and scores")
    print(f"    follow it at {settings.airflow_url}/dags/{PIPELINE_DAG_ID}")
    printer = ProgressPrinter(settings.state_dir, time.time())
    with phases.phase("pipeline run in Airflow"):
        try:
            states = follow(client, PIPELINE_DAG_ID, run_id, args.timeout, phases, printer)
        finally:
            printer.clear()
    final = client.run_state(PIPELINE_DAG_ID, run_id)

    results = {task: client.xcom(PIPELINE_DAG_ID, run_id, task) for task in states}
    outcome = RunOutcome(run_id, final, states, results)
    _finish(settings, portfolio, outcome, phases, total_started)
    if final != "success":
        failed = [t for t, ti in states.items() if ti.get("state") == "failed"]
        _explain_failure(settings, PIPELINE_DAG_ID, run_id, failed, states)
        return 1
    return 0


def _portfolio(args: argparse.Namespace, source: dict[str, str]) -> str:
    """The run's portfolio, resolved before anything starts: a bad mapping or name is said
    here, once, with its fix."""
    from ingestion.tasks import SourceError, portfolio_for

    try:
        return portfolio_for(
            args.source,
            portfolio=args.portfolio,
            path=source.get("csv_path"),
            mapping=source.get("csv_mapping"),
        )
    except SourceError as exc:
        raise CommandError(f"configuration error: {exc}", exit_code=2) from None


def _start_side_by_side(settings: Settings, engine: str = "airflow") -> None:
    """Start the warm Spark session, MLflow and the engine (Airflow, or the step worker) at
    once: each mostly waits on its own child process, so together they take about as long as
    the slowest, not the sum. A Spark session that does not start is a warning (each ETL task
    then starts its own)."""
    from concurrent.futures import ThreadPoolExecutor

    from infra.airflow import start_airflow
    from infra.services import ServiceError

    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="start") as pool:
        spark = pool.submit(_start, settings, "spark")
        mlflow = pool.submit(_start, settings, "mlflow")
        if engine == "stepfunctions":
            airflow = pool.submit(_start, settings, "sfn-worker")
        else:
            airflow = pool.submit(start_airflow, settings)
        try:
            spark.result()
        except (ServiceError, ValueError) as exc:
            logger.warning("no warm Spark session (%s); each ETL task starts its own", exc)
        mlflow.result()
        airflow.result()


def _print_live(settings: Settings) -> None:
    """The live scorer's line: where its status is, and its lag per shard right now."""
    from serving.live_status import read_status, status_lines

    status = read_status(settings)
    print(f"    Live       {settings.live_url}/health   (riskstream live status)")
    if status is not None:
        for line in status_lines(status)[:2]:
            print(f"               {line}")


def _start(settings: Settings, name: str) -> None:
    """Start one service of the registry and say where it answers."""
    from pipeline.stack import SERVICES_BY_NAME

    status = SERVICES_BY_NAME[name].make(settings).up()
    print(f"    {status.name} at {status.url}")


def _run_on_stepfunctions(
    settings: Settings,
    args: argparse.Namespace,
    conf: dict[str, Any],
    portfolio: str,
    phases: Phases,
    total_started: float,
) -> int:
    """Deploy the ASL to the cloud's Step Functions, start an execution, follow it, summarise
    (the step worker runs the steps: pipeline/sfn_worker.py)."""
    from pipeline import sfn

    try:
        sfn.enable_execution(settings)
        arn = sfn.deploy(settings)
        execution = sfn.start(settings, arn, conf)
    except Exception as exc:
        raise CommandError(f"could not start the state machine: {exc}") from None
    name = execution.rsplit(":", 1)[-1]
    print(f"==> pipeline: started execution {name} of {arn} with {conf}")
    print(f"    portfolio {portfolio!r}: its own features, model, champion and scores")
    print(f"    follow it with `riskstream sfn history {name}`")
    started = time.monotonic()
    printer = ProgressPrinter(settings.state_dir, time.time())

    def said(run: Any) -> None:
        if run.type not in ("Task", "Choice", "Fail"):
            return
        printer.clear()
        extra = f" in {run.seconds:.1f}s" if run.seconds is not None else ""
        if run.attempts > 1:
            extra += f" (attempt {run.attempts})"
        elapsed = time.monotonic() - started
        print(f"    [{elapsed:6.0f}s] {run.task_id:<24} {run.status}{extra}", flush=True)
        if run.seconds is not None and run.type == "Task":
            phases.items.append((f"  task {run.task_id}", run.seconds))

    with phases.phase("pipeline run in Step Functions"):
        try:
            outcome = sfn.wait(
                settings, execution, args.timeout, on_change=said, on_poll=printer.tick
            )
        except sfn.SfnError as exc:
            raise CommandError(str(exc)) from None
        finally:
            printer.clear()
    final = "success" if outcome.status == "SUCCEEDED" else "failed"
    states = {
        run.task_id: {
            "state": run.status,
            "start_date": run.entered.isoformat() if run.entered else None,
            "try_number": run.attempts,
        }
        for run in outcome.runs.values()
        if run.type == "Task"
    }
    results = {run.task_id: run.result for run in outcome.runs.values() if run.type == "Task"}
    ended = RunOutcome(name, final, states, results, f"Step Functions execution {execution}")
    _finish(settings, portfolio, ended, phases, total_started)
    if final == "success":
        return 0
    for run in outcome.runs.values():
        if run.status == "failed":
            tries = "attempt" if run.attempts == 1 else "attempts"
            print(f"\nFAILED: state {run.name} after {run.attempts} {tries}")
            for error in run.errors[-1:]:
                print(wrap(f"  {error}", indent=2))
            logs = settings.state_dir / "logs" / "sfn-steps" / name
            print(f"  its log: {logs / f'{run.name}.{run.attempts}.log'}")
    print(f"\nthe execution ended {outcome.status}: {outcome.error or ''} {outcome.cause or ''}")
    return 1


def follow(
    client: Any,
    dag_id: str,
    run_id: str,
    timeout: float,
    phases: Phases,
    printer: ProgressPrinter | None = None,
) -> dict[str, dict[str, Any]]:
    """Print each task's state changes until the run ends; record task durations as phases;
    between looks, the running tasks' progress (``printer``)."""
    started = time.monotonic()
    seen: dict[str, str] = {}
    states: dict[str, dict[str, Any]] = {}
    while time.monotonic() - started < timeout:
        states = client.task_states(dag_id, run_id)
        for task_id, ti in sorted(states.items(), key=lambda kv: kv[1].get("start_date") or "~"):
            state = ti.get("state")
            if state is None:  # not scheduled yet: nothing to say
                continue
            if seen.get(task_id) != state:
                seen[task_id] = state
                elapsed = time.monotonic() - started
                extra = ""
                if state in TERMINAL and ti.get("duration") is not None:
                    extra = f" in {ti['duration']:.1f}s"
                    phases.items.append((f"  task {task_id}", float(ti["duration"])))
                if ti.get("try_number", 1) and ti.get("try_number", 1) > 1:
                    extra += f" (attempt {ti['try_number']})"
                if printer is not None:
                    printer.clear()
                print(f"    [{elapsed:6.0f}s] {task_id:<24} {state}{extra}", flush=True)
        run_state = client.run_state(dag_id, run_id)
        if run_state in ("success", "failed"):
            return client.task_states(dag_id, run_id)
        if printer is not None:
            printer.tick()
        time.sleep(3)
    raise CommandError(
        f"the pipeline run {run_id} did not finish within {timeout:.0f}s; it goes on in Airflow"
    )


WIDTH = 100  # console lines are wrapped here, at spaces only


def shorten(text: str, width: int) -> str:
    """``text`` cut to about ``width`` characters at a space, never inside a word or a number
    (a single word longer than ``width`` is kept whole), with `` ...`` when cut."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width + 1)
    if cut <= 0:
        cut = text.find(" ", width)
        if cut < 0:
            return text
    return text[:cut].rstrip() + " ..."


def wrap(text: str, indent: int, width: int = WIDTH) -> str:
    """``text`` wrapped at spaces to ``width`` columns, continuation lines indented by
    ``indent``; words and numbers are never split (a longer one gets a line of its own)."""
    import textwrap

    return textwrap.fill(
        text,
        width=width,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _scalars(result: Any, limit: int = 8) -> str:
    if not isinstance(result, dict):
        return "" if result is None else shorten(str(result), 120)
    parts = []
    for key, value in result.items():
        if isinstance(value, bool | int | float | str) and len(parts) < limit:
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            parts.append(f"{key}={shorten(text, 120)}")
    return ", ".join(parts)


def _counters(result: Any) -> list[tuple[str, dict[str, int]]]:
    """The non-empty reason counters of a step's result (the producer's ``reasons`` and
    ``nulled_reasons``, the landing's ``quarantine_reasons``, the curated job's
    ``quarantined``): (key, {reason: count})."""
    if not isinstance(result, dict):
        return []
    return [
        (key, value)
        for key, value in result.items()
        if (key.endswith("reasons") or key == "quarantined")
        and isinstance(value, dict)
        and value
        and all(isinstance(n, int) for n in value.values())
    ]


@dataclass(frozen=True)
class RunOutcome:
    """How a pipeline run ended, on either engine: its id, its final state, each task's state
    (``state``, ``start_date``, ``end_date``, ``try_number``) and result, and the engine's name
    for the summary (None: Airflow)."""

    run_id: str
    final: str
    states: dict[str, dict[str, Any]]
    results: dict[str, Any]
    engine: str | None = None


def _finish(
    settings: Settings, portfolio: str, outcome: RunOutcome, phases: Phases, started: float
) -> None:
    """After a run on either engine: on success the API, the dashboard and the run's
    portfolio's live scorer are started; then the summary and the timings."""
    from infra.services import ServiceError

    if outcome.final == "success":
        with phases.phase("api and dashboard"):
            try:
                _start(settings, "api")
                _start(settings, "dashboard")
                # the live scorer of the run's portfolio: every event from now on moves a score
                _start(settings.for_portfolio(portfolio), "live")
            except ServiceError as exc:
                logger.warning("could not start a serving service: %s", exc)
    total = time.monotonic() - started
    print_summary(settings.for_portfolio(portfolio), outcome, phases, total)
    _save_timings(settings, outcome, phases)


def print_summary(settings: Settings, outcome: RunOutcome, phases: Phases, total: float) -> None:
    final, states, results = outcome.final, outcome.states, outcome.results
    print(f"\n==> pipeline {final.upper()} (portfolio {settings.portfolio})\n")
    order = sorted(states, key=lambda t: states[t].get("start_date") or "~")
    for task_id in order:
        ti = states[task_id]
        line = _scalars(results.get(task_id))
        print(wrap(f"  {task_id:<24} {ti.get('state') or '-':<16} {line}", indent=43))
        for key, counts in _counters(results.get(task_id)):
            listed = ", ".join(f"{reason} {n:,}" for reason, n in counts.items())
            print(wrap(f"{'':<43}{key}: {listed}", indent=45))
    features = results.get("curated_to_features") or {}
    if isinstance(features, dict) and features.get("obs_dates"):
        labels = features.get("labels") or {}
        print()
        print(
            wrap(
                f"  features of portfolio {settings.portfolio}: observation date(s) "
                f"{', '.join(features['obs_dates'])}; lookback "
                f"{features.get('lookback_months')} months, performance window "
                f"{features.get('performance_months')} months; {features.get('rows_out')} rows, "
                f"labels 1: {labels.get('1')}, 0: {labels.get('0')}, unknown: "
                f"{labels.get('null')}",
                indent=4,
            )
        )
    evaluation = results.get("evaluate_and_register") or {}
    models = evaluation.get("models") if isinstance(evaluation, dict) else None
    if isinstance(models, dict | list):
        print("\n  models:")
        items = models.items() if isinstance(models, dict) else enumerate(models)
        for name, metrics in items:
            print(wrap(f"    {name!s:<8} {_scalars(metrics, 6)}", indent=13))
    if isinstance(evaluation, dict) and "reason" in evaluation:
        print("\n" + wrap(f"  champion decision: {evaluation.get('reason')}", indent=4))
    print("\n  phase timings:")
    for name, seconds in phases.items:
        print(f"    {name:<30} {seconds:7.1f}s")
    print(f"    {'total':<30} {total:7.1f}s")
    print("\n  where to look:")
    if outcome.engine is not None:
        print(wrap(f"    Engine     {outcome.engine}  (`riskstream sfn history`)", indent=15))
    else:
        print(
            f"    Airflow    {settings.airflow_url}  (login admin; password in "
            f"{settings.state_dir / 'airflow' / 'simple_auth_manager_passwords.json.generated'})"
        )
    print(f"    MLflow     {settings.mlflow_tracking_uri}")
    print(f"    Dashboard  {settings.dashboard_url}")
    print(f"    API        {settings.api_url}/docs")
    _print_live(settings)
    print(f"    Cloud      {settings.endpoint_url}   (stop everything: make stop)")


def failure_notes(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """The notes the run's failed steps left (``step``, ``try_number``, ``error``: the error's
    type and message), oldest step first; none when they cannot be read."""
    from riskstream.clients import make_client
    from riskstream.names import PIPELINE_RUNS_PREFIX

    try:
        s3 = make_client(settings, "s3")
        bucket = settings.bucket("artifacts")
        prefix = f"{PIPELINE_RUNS_PREFIX}/{run_id}/failures/"
        items = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        items.sort(key=lambda item: item["LastModified"])
        return [
            json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for item in items
        ]
    except Exception:  # the notes only explain; never hide the failure itself
        logger.warning("could not read the failure notes of run %s", run_id, exc_info=True)
        return []


def _explain_failure(
    settings: Settings, dag_id: str, run_id: str, failed: list[str], states: dict[str, Any]
) -> None:
    """Print each failed step's error itself (with the fix its message gives), then where its
    full log is."""
    from infra.airflow import task_log_path
    from pipeline.asl import task_id_for

    notes = {task_id_for(n.get("step", "")): n for n in failure_notes(settings, run_id)}
    for task_id in failed:
        attempt = int(states[task_id].get("try_number") or 1)
        tries = "attempt" if attempt == 1 else "attempts"
        print(f"\nFAILED: task {task_id} after {attempt} {tries}")
        note = notes.get(task_id)
        if note and note.get("error"):
            print(wrap(f"  {note['error']}", indent=2))
        print(f"  its log: {task_log_path(settings, dag_id, run_id, task_id, attempt)}")
    if not failed:
        print("\nFAILED: the run failed; see the Airflow UI for details")


def _save_timings(settings: Settings, outcome: RunOutcome, phases: Phases) -> None:
    """The run's phases (with their wall-clock starts), each task's final state, start and end,
    and the numbers of its result, for `make bench` (benchmarks/bench_run.py, bench_scale.py)."""
    out = settings.state_dir / "runs" / "last-run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "state": outcome.final,
                "phases": [[n, s] for n, s in phases.items],
                "tasks": {task: ti.get("state") for task, ti in outcome.states.items()},
                "phase_started_at": phases.started_at,
                "task_times": {
                    task: [ti.get("start_date"), ti.get("end_date")]
                    for task, ti in outcome.states.items()
                },
                "task_numbers": {
                    task: {
                        k: v
                        for k, v in result.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)
                    }
                    for task, result in outcome.results.items()
                    if isinstance(result, dict)
                },
            },
            indent=2,
        )
    )
