"""The default `riskstream run` on both orchestrators (issue 28): Airflow, then the local cloud's
Step Functions with the step worker, on the same machine and data (fresh state dir and private
ports each). `sfn.run.ratio` is the whole Step Functions run over the whole Airflow run;
`sfn.parity` says whether the two ran the same steps and left the same outputs (catalog tables,
feature rows, registered champion, every account's score and decision) and whether the
failure-path parity test (a step that fails, is retried, then caught) passes on both."""

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

from riskstream.settings import Settings


def one_run(engine: str, accounts: str) -> dict[str, Any]:
    """`riskstream run --engine ENGINE` on a fresh state dir: seconds, exit code, steps, outputs."""
    from pipeline.outputs import outputs

    with tempfile.TemporaryDirectory() as state:
        env = private_stack_env(state, f"bench{engine[:3]}")
        riskstream = [str(Path(sys.executable).with_name("riskstream"))]
        mark = time.perf_counter()
        try:
            result = subprocess.run(
                [*riskstream, "run", "--engine", engine, "--accounts", accounts, "--months", "12"],
                env=env,
                cwd=ROOT,
                timeout=3600,
            )
            seconds = time.perf_counter() - mark
            timings = json.loads((Path(state) / "runs" / "last-run.json").read_text())
            found: dict[str, Any] = {}
            if result.returncode == 0:
                found = outputs(Settings.from_env(env=env, dotenv=None))
        finally:
            subprocess.run([*riskstream, "stop"], env=env, cwd=ROOT, timeout=120)
    return {
        "seconds": seconds,
        "code": result.returncode,
        "steps": succeeded_steps(timings.get("tasks") or {}),
        "outputs": found,
    }


def succeeded_steps(tasks: dict[str, str]) -> list[str]:
    """The ASL's Task states that ran and succeeded (Airflow's tasks for Choice, Succeed and
    Fail states, and a failure handler it skipped, are not steps)."""
    from pipeline.asl import load_workflow

    steps = {s.task_id for s in load_workflow().steps.values() if s.kind == "Task"}
    return sorted(t for t, state in tasks.items() if t in steps and state == "success")


def failure_path_test() -> bool:
    """The parity test over the small machine, failure path included (tests/dags/)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/dags/test_sfn_parity.py",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=1800,
    )
    return result.returncode == 0


def main() -> None:
    args = cli(__doc__ or "")
    accounts = "200" if args.quick else "2000"  # 2,000 x 12 months: the default portfolio
    load_before = os.getloadavg()
    airflow = one_run("airflow", accounts)
    stepfunctions = one_run("stepfunctions", accounts)
    load_after = os.getloadavg()
    failure_path = failure_path_test()
    same_steps = airflow["steps"] == stepfunctions["steps"]
    same_outputs = bool(airflow["outputs"]) and airflow["outputs"] == stepfunctions["outputs"]
    parity = airflow["code"] == stepfunctions["code"] == 0 and same_steps and same_outputs
    parity = parity and failure_path
    load = (
        f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f}/"
        f"{load_after[2]:.1f}; {os.cpu_count()} cores"
    )
    differences = []
    if not same_steps:
        differences.append(f"steps {airflow['steps']} vs {stepfunctions['steps']}")
    if not same_outputs:
        differences.append(f"outputs {airflow['outputs']} vs {stepfunctions['outputs']}")
    if not failure_path:
        differences.append("the failure-path parity test failed")
    rows = [
        Row(
            "orchestrators",
            f"steps, outputs and failure path equal on Airflow and Step Functions "
            f"({accounts} accounts x 12 months; the small machine's failure path)",
            1.0 if parity else 0.0,
            "yes/no",
            target="yes",
            met=parity,
            note="; ".join(differences)[:600] or f"outputs {stepfunctions['outputs']}",
            id="sfn.parity",
        ),
        ratio_row(
            "orchestrators",
            f"whole `riskstream run --engine stepfunctions`, {accounts} accounts x 12 months",
            stepfunctions["seconds"],
            "s",
            "whole `riskstream run` on Airflow, same data, right before",
            airflow["seconds"],
            ratio_at_most=1.0,
            also=stepfunctions["code"] == 0,
            note=load,
            id="sfn.run.ratio",
        ),
    ]
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
