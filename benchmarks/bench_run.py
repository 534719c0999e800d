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

from common import ROOT, Row, cli, write_rows

from infra.services import free_port


def main() -> None:
    args = cli(__doc__ or "")
    started = time.perf_counter()
    subprocess.run([str(ROOT / "infra" / "bootstrap.sh")], check=True, cwd=ROOT)
    setup_seconds = time.perf_counter() - started
    accounts = "200" if args.quick else "1000"
    with tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ,
            "RISKSTREAM_STATE_DIR": state,
            "RISKSTREAM_CLOUD_PORT": str(free_port()),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_AIRFLOW_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_API_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_DASHBOARD_URL": f"http://127.0.0.1:{free_port()}",
            "RISKSTREAM_PREFIX": "benchrun",
        }
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
    rows = [
        Row(
            "make run",
            "set-up, second run (nothing to do)",
            setup_seconds,
            "s",
            target="seconds",
            met=setup_seconds < 15,
        ),
    ]
    phases = [(name, float(seconds)) for name, seconds in timings["phases"]]
    slowest = max(phases, key=lambda p: p[1])
    for name, seconds in phases:
        rows.append(
            Row(
                "make run",
                f"phase: {name}",
                seconds,
                "s",
                reference="whole run",
                reference_value=total,
                ratio=seconds / total,
                note="slowest phase" if (name, seconds) == slowest else "",
            )
        )
    rows.append(
        Row(
            "make run",
            f"whole run ({accounts} synthetic accounts, fresh state)",
            total,
            "s",
            target="pipeline succeeds",
            met=result.returncode == 0 and timings["state"] == "success",
        )
    )
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
