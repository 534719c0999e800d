"""Run every benchmarks/bench_*.py and write one table: benchmarks/results.md and .json.

python benchmarks/run_all.py [--only NAME] [--quick] [--merge]

bench_scale.py (the 100x portfolio, about an hour: `make bench-scale`) runs only when named
with ``--only scale``.

``--merge`` (with ``--only``) keeps the last results and replaces only the rows the re-run
scripts wrote, by id; the machine line then says what was re-run and when.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ON_REQUEST = {"scale": "make bench-scale"}  # run only when --only names them


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="run only bench_<NAME>.py (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace only the re-run scripts' rows (by id) in the last results",
    )
    args = parser.parse_args()
    if args.merge and not args.only:
        parser.error("--merge needs --only NAME: it replaces the rows of the scripts re-run")
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    else:
        for name, target in ON_REQUEST.items():
            print(f"(bench_{name}.py is not run by `make bench`: `{target}` runs it)")
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") not in ON_REQUEST]
    out_dir = HERE / "out"
    rows: list[dict[str, object]] = []
    failures: list[str] = []
    for script in scripts:
        out = out_dir / f"{script.stem}.json"
        out.unlink(missing_ok=True)
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, str(script), "--out", str(out)] + (["--quick"] if args.quick else [])
        result = subprocess.run(cmd, cwd=HERE.parent, check=False)
        print(f"   ({time.monotonic() - started:.0f}s)", flush=True)
        if result.returncode != 0 or not out.is_file():
            failures.append(f"{script.name} exited {result.returncode}")
            continue
        rows.extend(json.loads(out.read_text()))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = (
        f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}, "
        f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at the end {load}"
    )
    if args.merge:
        rows, machine = _merge(rows, machine, [s.stem.removeprefix("bench_") for s in scripts])
    missing = [str(r.get("figure")) for r in rows if not r.get("id")]
    if missing:
        failures.append(f"rows without a stable id: {missing}")
    (HERE / "results.json").write_text(
        json.dumps({"machine": machine, "quick": args.quick, "rows": rows}, indent=2)
    )
    (HERE / "results.md").write_text(render(rows, machine, args.quick))
    print((HERE / "results.md").read_text())
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _merge(
    new: list[dict[str, object]], machine: str, names: list[str]
) -> tuple[list[dict[str, object]], str]:
    """The last results with each re-run row in its place (rows with new ids at the end), and
    a machine line naming both runs."""
    last = json.loads((HERE / "results.json").read_text())
    fresh = {r["id"]: r for r in new}
    merged = [fresh.pop(row["id"], row) for row in last["rows"]]  # type: ignore[call-overload]
    merged += list(fresh.values())
    rerun = ", ".join(f"bench_{n}.py" for n in names)
    return merged, f"{last['machine']}; {rerun} re-run on: {machine}"


def render(rows: list[dict[str, object]], machine: str, quick: bool) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine}. Written by `make bench`{' (quick)' if quick else ''}; each figure "
        "is measured beside its reference in the same run.",
        "",
        "| id | area | figure | value | reference | ratio | target | met |",
        "| --- | --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for r in rows:
        ref = r.get("reference") or ""
        if r.get("reference_value") is not None:
            ref = f"{ref}: {_num(r['reference_value'])}"
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]  # type: ignore[index]
        lines.append(
            f"| `{r.get('id') or '-'}` | {r['area']} | {r['figure']} "
            f"| {_num(r['value'])} {r['unit']} | {ref} | {ratio} "
            f"| {r.get('target', '')} | {met} |"
        )
    notes = [f"- {r['figure']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def _num(value: object) -> str:
    if isinstance(value, int | float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return str(value)


def _cores() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
