"""The project runs on any machine: no absolute path of one machine and no package-index host in
the files git tracks (code, tests, docs, benchmarks, set-up)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".toml", ".sh", ".json", ".yml", ".yaml", ".cfg", ".ini", ".txt"}
NAMES = {"Makefile", "Dockerfile"}
# uv.lock records where each locked file came from (that is its job); infra/compose/ builds images
# (paths inside a container, not on a machine); data/ holds data.
SKIP = {"uv.lock"}
SKIP_DIRS = ("data/", "infra/compose/")
# Built from pieces so this file does not match itself.
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])/(?:" + "|".join(["work", "home", "root", "Users", "tmp"]) + r")/"
)
INDEX_HOST = re.compile(
    "|".join(
        re.escape(h)
        for h in [
            "pypi" + ".org",
            "python" + "hosted" + ".org",
            "maven" + ".org",
            "repo." + "maven" + ".apache.org",
            "registry." + "npm" + "js.org",
        ]
    )
)


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing tracked to check")
    return [
        REPO_ROOT / name
        for name in out
        if name not in SKIP
        and not name.startswith(SKIP_DIRS)
        and (Path(name).suffix in SUFFIXES or Path(name).name in NAMES)
        and (REPO_ROOT / name).is_file()
    ]


def offending_lines(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in tracked_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:120]}")
    return found


def test_no_absolute_machine_path_in_tracked_files() -> None:
    assert offending_lines(MACHINE_PATH) == []


def test_no_package_index_host_in_tracked_files() -> None:
    assert offending_lines(INDEX_HOST) == []


def test_the_patterns_catch_what_they_are_for() -> None:
    assert MACHINE_PATH.search('DEFAULT = Path("' + "/" + 'work/shared/x.csv")')
    assert MACHINE_PATH.search("see " + "/" + "home/someone/riskstream")
    assert not MACHINE_PATH.search("s3://bucket/work/x and ./tmp/y and ~/" + "tmp/z")
    assert INDEX_HOST.search('index = "https://' + "pypi" + '.org/simple"')
