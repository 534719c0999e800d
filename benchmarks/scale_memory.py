"""The pure parts of benchmarks/bench_scale.py: which service a process belongs to, peaks of
resident memory per service and per phase, the phases' wall-clock windows, the size labels and
the phase table. No process is read here (tests/benchmarks/test_scale_memory.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_ACCOUNTS = 2_000  # `make run`'s portfolio, the 1x of the size labels
AIRFLOW_TASKS = "airflow tasks"
CONSOLE = "riskstream run (console)"


def size_label(accounts: int, base: int = DEFAULT_ACCOUNTS) -> str:
    """``20000`` -> ``10x``, ``200000`` -> ``100x`` (the multiple of the default portfolio)."""
    ratio = accounts / base
    return f"{ratio:g}x"


# (service, words of a command line): a process is counted under the first whose word it has
BY_COMMAND = (
    (AIRFLOW_TASKS, ("LocalExecutor", "task runner", "task supervisor", " tasks run ")),
    ("airflow", ("bin/airflow ", "airflow standalone", "airflow scheduler")),
    ("cloud", ("infra.moto_server",)),
    ("mlflow", ("mlflow",)),
    ("spark", ("etl.session_server", "pyspark.daemon", "org.apache.spark", "spark-class")),
)


def service_of(owner: str | None, cmdline: str) -> str:
    """The service a process is counted under: by its command line where that says (Airflow's
    task processes, where the steps run: producing, landing, training, scoring, apart from
    Airflow itself), else the managed service whose process tree holds it (its pid file's
    name), else the console of the run."""
    padded = f" {cmdline} "
    for service, words in BY_COMMAND:
        if any(word in padded for word in words):
            return service
    return owner or CONSOLE


def owners_by_ancestry(
    parents: Mapping[int, int], roots: Mapping[int, str | None]
) -> dict[int, str | None]:
    """Each process under one of ``roots`` (pid -> its service, or None for the run itself),
    owned by its nearest root ancestor, from one read of the process table (pid -> parent pid).

    Read in one pass, a process forked while the trees were walked one after another can no
    longer count under the run's console in a sample and under its service in the next: a
    forked training process (1.25 GB of copy-on-write pages) once counted twice that way."""
    owned = {pid: owner for pid, owner in roots.items() if pid in parents}
    for pid in parents:
        chain, at = [], pid
        while at not in owned and at in parents and len(chain) < 64:
            chain.append(at)
            at = parents[at]
        if at in owned:  # else not under the run or a service
            owned.update(dict.fromkeys(chain, owned[at]))
    return owned


@dataclass
class Peaks:
    """Peak resident memory (MB) per service, and of all of them together, over the samples;
    ``timeline`` keeps (wall time, total MB) for the phases' peaks."""

    by_service: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    timeline: list[tuple[float, float]] = field(default_factory=list)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def add(self, at: float, sample: Mapping[str, float]) -> None:
        for service, mb in sample.items():
            self.by_service[service] = max(self.by_service.get(service, 0.0), mb)
        now = sum(sample.values())
        self.total = max(self.total, now)
        self.timeline.append((at, now))
        self.samples.append((at, dict(sample)))

    def services_between(self, start: float, end: float) -> dict[str, float]:
        """Each service's own peak within [start, end]: which phase set a service's peak."""
        out: dict[str, float] = {}
        for at, sample in self.samples:
            if start <= at <= end:
                for service, mb in sample.items():
                    out[service] = max(out.get(service, 0.0), mb)
        return out

    def services_by_phase(self, timings: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Per phase of a run (:func:`phase_windows`), each service's peak during it."""
        return {
            name.strip(): self.services_between(start, end)
            for name, _, start, end in phase_windows(timings)
            if start is not None
        }

    @property
    def sum_of_peaks(self) -> float:
        """Each service's own peak, added (an upper bound of what the machine must hold)."""
        return sum(self.by_service.values())

    def peak_between(self, start: float, end: float) -> float | None:
        """The highest total within [start, end] (None when no sample fell in it)."""
        inside = [mb for at, mb in self.timeline if start <= at <= end]
        return max(inside) if inside else None

    def by_phase(self, timings: Mapping[str, Any]) -> list[tuple[str, float, float | None]]:
        """(phase, seconds, highest total during it) for each phase of a run's
        ``last-run.json`` (:func:`phase_windows`; None where its start was not recorded)."""
        return [
            (name, seconds, self.peak_between(start, end) if start is not None else None)
            for name, seconds, start, end in phase_windows(timings)
        ]


def _wall(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def phase_windows(timings: Mapping[str, Any]) -> list[tuple[str, float, float | None, float]]:
    """(phase, seconds, start, end) for each phase of a run's ``last-run.json``: the run's own
    phases from their recorded wall-clock starts, each task from Airflow's start and end
    (start None when the run did not record it)."""
    starts: Mapping[str, float] = timings.get("phase_started_at") or {}
    times: Mapping[str, list[str | None]] = timings.get("task_times") or {}
    out: list[tuple[str, float, float | None, float]] = []
    for name, seconds in timings.get("phases", []):
        name, seconds = str(name), float(seconds)
        start: float | None
        if name.strip().startswith("task "):
            task = name.strip().removeprefix("task ")
            begin, end = (times.get(task) or [None, None])[:2]
            start, stop = _wall(begin), _wall(end)
            if start is not None and stop is None:
                stop = start + seconds
        else:
            start = starts.get(name)
            stop = start + seconds if start is not None else None
        out.append((name, seconds, start, stop if stop is not None else 0.0))
    return out


def events_of(timings: Mapping[str, Any]) -> int | None:
    """Events the run produced (the produce task's ``sent``), when recorded."""
    numbers = (timings.get("task_numbers") or {}).get("produce_events") or {}
    sent = numbers.get("sent")
    return int(sent) if sent else None


def phase_table(
    rows: Iterable[tuple[str, float, float | None]], events: int | None, total: float
) -> str:
    """The markdown table of a scale run: phase, seconds, seconds per million events, peak
    resident memory of all services together during the phase (MB)."""
    per = (lambda s: f"{s / (events / 1e6):,.1f}") if events else (lambda s: "-")
    lines = [
        "| phase | seconds | s per million events | peak memory, all services (MB) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds, peak in rows:
        shown = "-" if peak is None else f"{peak:,.0f}"
        lines.append(f"| {name.strip()} | {seconds:,.1f} | {per(seconds)} | {shown} |")
    lines.append(f"| **whole run** | {total:,.1f} | {per(total)} | |")
    return "\n".join(lines) + "\n"
