"""A portfolio a hundred times `make run`'s, end to end: the whole `riskstream run --source
synthetic --accounts N --months 12` on a fresh state directory and free ports, for each size of
RISKSTREAM_SCALE_ACCOUNTS (default "20000,200000"; --quick: "200,2000"), timed phase by phase,
with every service's peak resident memory sampled (its process tree, every half second), then
the cloud killed (-9) and restarted on the run's state, timed until it answers.

Rows: ``scale.run_<k>x.seconds`` (whole run, with seconds per million events),
``scale.growth_<k>x`` (whole run at that size / at the previous size: linear is the size
ratio), ``scale.cloud.peak_rss_mb_<k>x``, ``scale.peak_rss_mb_<k>x`` (the services' peaks
added), ``cloud.durable.restart_seconds_<k>x``, where ``<k>x`` is the size as a multiple of the
default 2,000 accounts. Each size's phase table goes to benchmarks/out/scale_<k>x.md.
The 200,000-account run takes about an hour of both cores: `make bench-scale` runs it, `make
bench` does not (it names it). RISKSTREAM_SCALE_DIR: where the state directories go (default:
the system's temporary folder; the 100x state is several GB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import ROOT, Row, private_stack_env, ratio_row, write_rows
from scale_memory import (
    CONSOLE,
    Peaks,
    events_of,
    owners_by_ancestry,
    phase_table,
    service_of,
    size_label,
)

GOALS = {  # by size label: the goals at 100x
    "100x": {"growth": 11.0, "cloud": 4096.0, "total": 16384.0, "restart": 15.0},
}


def _owners(state: Path) -> dict[int, str]:
    """The managed services' root pids, from their pid files (``<state>/run/<name>.pid``)."""
    owners: dict[int, str] = {}
    for pid_file in (state / "run").glob("*.pid"):
        try:
            owners[int(json.loads(pid_file.read_text())["pid"])] = pid_file.stem
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return owners


class Sampler:
    """Every ``every`` seconds, the resident memory of the run's process tree and of every
    managed service's tree, summed per service (:func:`scale_memory.service_of`); each process
    is owned by its nearest managed ancestor, from one read of the process table."""

    def __init__(self, run_pid: int, state: Path, every: float = 0.5) -> None:
        self.run_pid = run_pid
        self.state = state
        self.every = every
        self.peaks = Peaks()
        self.cmdlines: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.peaks.add(time.time(), self.sample())
            except Exception as exc:  # a process ending mid-read: skip that sample
                print(f"sample skipped: {exc}", file=sys.stderr)

    def sample(self) -> dict[str, float]:
        import psutil

        roots: dict[int, str | None] = {self.run_pid: None, **_owners(self.state)}
        parents = {p.info["pid"]: p.info["ppid"] for p in psutil.process_iter(["pid", "ppid"])}
        mb: dict[str, float] = {}
        for pid, owner in owners_by_ancestry(parents, roots).items():
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss / 2**20
                cmd = " ".join(proc.cmdline())  # whole: a JVM's class comes after its classpath
            except psutil.Error:
                continue
            who = service_of(owner, cmd)
            self.cmdlines.setdefault(who, set()).add(cmd[:120])
            mb[who] = mb.get(who, 0.0) + rss
        return mb


def _cloud_restart(env: dict[str, str], riskstream: list[str], state: Path) -> tuple[float, bool]:
    """Kill the run's cloud with SIGKILL (a crash) and time `riskstream cloud up` on its state
    until it answers: (seconds, whether it came back)."""
    owners = {name: pid for pid, name in _owners(state).items()}
    pid = owners.get("cloud")
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(1.0)
    began = time.perf_counter()
    answer = subprocess.run([*riskstream, "cloud", "up"], env=env, cwd=ROOT, timeout=900)
    seconds = time.perf_counter() - began
    if answer.returncode != 0:  # it exited, or did not answer within its start timeout
        print(f"the cloud did not come back ({seconds:.0f} s): see its log", file=sys.stderr)
    return seconds, answer.returncode == 0


def _restored(state: Path) -> str:
    """What the cloud's last restore took, from its log: the snapshot's load, the requests
    replayed and their time ("" when the log does not say)."""
    try:
        lines = (state / "logs" / "cloud.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [line for line in lines if "restored the local cloud" in line]
    return said[-1].split(": ", 1)[-1] if said else ""


def _du_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                continue
    return total / 2**20


def _keep(state: Path, label: str, sampler: Sampler) -> None:
    """The run's record and the memory peaks so far, beside the results (benchmarks/out/)."""
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (out / f"scale_{label}.last-run.json").write_text(
            (state / "runs" / "last-run.json").read_text()
        )
    peaks = sampler.peaks
    (out / f"scale_{label}.peaks.json").write_text(
        json.dumps({"by_service": peaks.by_service, "total": peaks.total}, indent=2)
    )


def one_size(accounts: int, base_dir: str | None) -> dict[str, Any]:
    """The whole run at ``accounts``, its phases, peaks and the cloud's restart."""
    label = size_label(accounts)
    with tempfile.TemporaryDirectory(prefix=f"scale-{label}-", dir=base_dir) as tmp:
        state = Path(tmp)
        env = private_stack_env(tmp, f"scale{accounts}")
        riskstream = [str(Path(sys.executable).with_name("riskstream"))]
        command = [*riskstream, "run", "--source", "synthetic", "--accounts", str(accounts)]
        command += ["--months", "12", "--timeout", "21600"]
        print(f"== {label}: {' '.join(command[1:])} (state {state})", flush=True)
        began = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=ROOT)
        try:
            with Sampler(process.pid, state) as sampler:
                code = process.wait()
                total = time.perf_counter() - began
                time.sleep(2.0)  # the services as the run left them: one more sample
            state_mb = _du_mb(state / "cloud")
            _keep(state, label, sampler)  # what was measured so far, whatever comes next
            restart, came_back = _cloud_restart(env, riskstream, state)
            restored = _restored(state)
        finally:
            if process.poll() is None:
                process.kill()
            subprocess.run([*riskstream, "stop"], env=env, cwd=ROOT, timeout=300)
        timings = json.loads((state / "runs" / "last-run.json").read_text())
    peaks = sampler.peaks
    events = events_of(timings)
    table = peaks.by_phase(timings)
    return {
        "accounts": accounts,
        "label": label,
        "exit_code": code,
        "state": timings.get("state"),
        "seconds": total,
        "events": events,
        "peaks_mb": dict(sorted(peaks.by_service.items())),
        "peak_total_mb": peaks.total,
        "sum_of_peaks_mb": peaks.sum_of_peaks,
        "cloud_state_mb": state_mb,
        "restart_seconds": restart,
        "restart_ok": came_back,
        "restored": restored,
        "phases": table,
        # which phase set each service's peak (the sum of peaks adds peaks of different phases)
        "service_peaks_by_phase": peaks.services_by_phase(timings),
        "table": phase_table(table, events, total),
        "cmdlines": {k: sorted(v)[:12] for k, v in sampler.cmdlines.items()},
    }


def rows_for(runs: list[dict[str, Any]]) -> list[Row]:
    """The benchmark rows of the sizes run, smallest first."""
    rows: list[Row] = []
    previous: dict[str, Any] | None = None
    for run in runs:
        label, goals = run["label"], GOALS.get(run["label"], {})
        ok = run["exit_code"] == 0 and run["state"] == "success"
        per_m = run["seconds"] / (run["events"] / 1e6) if run["events"] else float("nan")
        rows.append(
            Row(
                "scale",
                f"whole `riskstream run`, {run['accounts']:,} accounts x 12 months "
                f"({run['events'] or 0:,} events), fresh state",
                run["seconds"],
                "s",
                reference="seconds per million events",
                reference_value=per_m,
                target="pipeline succeeds",
                met=ok,
                note=f"peaks by service (MB): {_peaks_note(run['peaks_mb'])}; cloud state "
                f"{run['cloud_state_mb']:,.0f} MB",
                id=f"scale.run_{label}.seconds",
            )
        )
        if previous is not None:
            size_ratio = run["accounts"] / previous["accounts"]
            rows.append(
                ratio_row(
                    "scale",
                    f"whole run at {run['accounts']:,} accounts / at {previous['accounts']:,} "
                    f"(previous run {previous['seconds']:,.0f} s)",
                    run["seconds"] / previous["seconds"],
                    "x",
                    "linear growth: the size ratio",
                    size_ratio,
                    at_most=goals.get("growth", 1.1 * size_ratio),
                    also=ok,
                    id=f"scale.growth_{label}",
                )
            )
        # peaks of resident memory, MB, each beside another total: (id, what, its peak, beside
        # it, that total, the goal's name)
        memory = [
            (
                "scale.cloud.peak_rss_mb",
                "embedded cloud's peak resident memory",
                run["peaks_mb"].get("cloud", float("nan")),
                "all services' peaks added",
                run["sum_of_peaks_mb"],
                "cloud",
            ),
            (
                "scale.peak_rss_mb",
                "every service's peak resident memory added (RSS: shared pages count once per "
                "process)",
                run["sum_of_peaks_mb"],
                "highest total at one moment",
                run["peak_total_mb"],
                "total",
            ),
        ]
        for row_id, what, peak, beside, beside_mb, goal in memory:
            rows.append(
                ratio_row(
                    "scale",
                    f"{what}, {run['accounts']:,} accounts",
                    peak,
                    "MB",
                    f"{beside}, MB",
                    beside_mb,
                    at_most=goals.get(goal),
                    id=f"{row_id}_{label}",
                )
            )
        rows.append(
            Row(
                "scale",
                f"cloud killed (-9) and restarted on the state of the {run['accounts']:,}-account "
                "run, until it answers",
                run["restart_seconds"],
                "s",
                reference="the cloud's state on disk, MB",
                reference_value=run["cloud_state_mb"],
                target=f"<= {goals['restart']:g} s" if "restart" in goals else "",
                met=_restart_met(run, goals),
                note=f"its log: {run.get('restored') or 'no restore line'}"
                if run["restart_ok"]
                else "it did not come back: `riskstream cloud up` "
                "failed after that many seconds (the cloud's log says why)",
                id=f"cloud.durable.restart_seconds_{label}",
            )
        )
        previous = run
    return rows


def _restart_met(run: dict[str, Any], goals: dict[str, float]) -> bool | None:
    if not run["restart_ok"]:
        return False
    return run["restart_seconds"] <= goals["restart"] if "restart" in goals else None


def _peaks_note(peaks: dict[str, float]) -> str:
    order = sorted(peaks.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:,.0f}" for k, v in order if k != CONSOLE or v > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON rows")
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 accounts")
    parser.add_argument(
        "--accounts",
        default=os.environ.get("RISKSTREAM_SCALE_ACCOUNTS"),
        help='comma-separated sizes, run in this order (default "20000,200000")',
    )
    args = parser.parse_args()
    sizes_text = args.accounts or ("200,2000" if args.quick else "20000,200000")
    # run in the order given (the larger first, when time may run out); rows smallest first
    sizes = [int(s) for s in sizes_text.split(",") if s.strip()]
    base_dir = os.environ.get("RISKSTREAM_SCALE_DIR") or None
    runs = []
    for accounts in sizes:
        run = one_size(accounts, base_dir)
        runs.append(run)
        detail = args.out.parent / f"scale_{run['label']}.json"
        detail.parent.mkdir(parents=True, exist_ok=True)
        detail.write_text(json.dumps(run, indent=2))
        (args.out.parent / f"scale_{run['label']}.md").write_text(run["table"])
        print(run["table"], flush=True)
    write_rows(args.out, rows_for(sorted(runs, key=lambda r: r["accounts"])))


if __name__ == "__main__":
    main()
