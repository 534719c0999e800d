"""The LocalStack lane (tests/localstack/): how many of its tests pass on LocalStack community in
host mode, out of how many ran (``localstack.suite.passed``). Its install is cached (infra/
localstack.py), so the wall time beside it is the lane's own after the first run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import Row, cli, write_rows

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    args = cli(__doc__ or "")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "lane.xml"
        started = time.perf_counter()
        subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
                *("tests/localstack", f"--junitxml={report}"),
            ],
            cwd=ROOT,
            check=False,
        )
        seconds = time.perf_counter() - started
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
    run = int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    passed = run - failed
    value = passed / run if run else 0.0
    rows = [
        Row(
            "localstack",
            "tests of the LocalStack lane passed / run (host mode, no Docker)",
            value,
            "ratio",
            reference="tests of the lane run",
            reference_value=float(run),
            ratio=value,
            target="1.0",
            met=run > 0 and passed == run,
            note=f"{passed} of {run} passed in {seconds:.0f} s (LocalStack's start included)",
            id="localstack.suite.passed",
        )
    ]
    write_rows(args.out, rows)


if __name__ == "__main__":
    main()
