"""`make run` on a fresh state directory, split by phase: set-up (a second, no-op run),
services up, and each DAG task, so the slowest phase is visible. Runs on ports of its own, so a
stack the user already has up is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, Row, cli, private_stack_env, ratio_row, write_rows

PIPELINE_PHASE = "pipeline run in Airflow"


def one_run(accounts: str) -> tuple[float, int, dict[str, Any]]:
    """`riskstream run` on a fresh state dir and free ports: (seconds, exit code, timings)."""
    with tempfile.TemporaryDirectory() as state:
        env = private_stack_env(state, "benchrun")
        riskstream = [str(Path(sys.executable).with_name("riskstream"))]
        mark = time.perf_counter()
        try:
            result = subprocess.run(
                [*riskstream, "run", "--accounts", accounts, "--months", "12"],
                env=env,
                cwd=ROOT,
                timeout=3600,
            )
        finally:
            subprocess.run([*riskstream, "stop"], env=env, cwd=ROOT, timeout=120)
        total = time.perf_counter() - mark
        timings = json.loads((Path(state) / "runs" / "last-run.json").read_text())
    return total, result.returncode, timings


def _phases(timings: dict[str, Any]) -> list[tuple[str, float]]:
    return [(str(name), float(seconds)) for name, seconds in timings["phases"]]


def _phase(timings: dict[str, Any], name: str) -> float:
    """Seconds of one phase of a run's timings (nan when the run never reached it)."""
    return dict(_phases(timings)).get(name, float("nan"))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.strip().lower()).strip("_")


def main() -> None:
    args = cli(__doc__ or "")
    started = time.perf_counter()
    subprocess.run([str(ROOT / "infra" / "bootstrap.sh")], check=True, cwd=ROOT)
    setup_seconds = time.perf_counter() - started
    accounts = "200" if args.quick else "2000"  # 2,000 x 12 months: the default portfolio
    repeats = 1 if args.quick else 3
    load_before = os.getloadavg()
    runs = [one_run(accounts) for _ in range(repeats)]
    load_after = os.getloadavg()
    pipeline = [_phase(t, PIPELINE_PHASE) for _, _, t in runs]
    order = sorted(range(len(runs)), key=lambda i: pipeline[i])
    median_i = order[len(order) // 2]
    total, code, timings = runs[median_i]
    ok = all(c == 0 and t["state"] == "success" for _, c, t in runs)
    load = (
        f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f}/"
        f"{load_after[2]:.1f}; {os.cpu_count()} cores"
    )
    rows = [
        Row(
            "make run",
            "set-up, second run (nothing to do)",
            setup_seconds,
            "s",
            target="seconds",
            met=setup_seconds < 15,
            id="run.setup.seconds",
        ),
        ratio_row(
            "make run",
            f"`riskstream run`, {accounts} accounts x 12 months: the Airflow run, trigger to done "
            f"(median of {repeats})",
            pipeline[median_i],
            "s",
            "whole `riskstream run` of that run (services included)",
            total,
            at_most=240,
            also=ok,
            note=f"runs {', '.join(f'{p:.0f} s' for p in pipeline)}; {load}",
            id="run.pipeline.seconds",
        ),
    ]
    phases = _phases(timings)
    slowest = max(phases, key=lambda p: p[1])
    for name, seconds in phases:
        rows.append(
            ratio_row(
                "make run",
                f"phase: {name}",
                seconds,
                "s",
                "whole run",
                total,
                note="slowest phase" if (name, seconds) == slowest else "",
                id=f"run.phase.{_slug(name)}.seconds",
            )
        )
    rows.append(
        Row(
            "make run",
            f"whole run ({accounts} synthetic accounts, fresh state)",
            total,
            "s",
            target="pipeline succeeds",
            met=code == 0 and timings["state"] == "success",
            id="run.whole.seconds",
        )
    )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
