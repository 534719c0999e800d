"""The layers only point down, and the foundation stays light: a wrong import fails CI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.light_imports import heavy_loaded_by

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    """pyproject.toml [tool.importlinter]: pipeline > capabilities > infra > foundation."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_importing_the_foundation_loads_no_heavy_library() -> None:
    code = (
        "import riskstream, riskstream.settings, riskstream.names, riskstream.storage, "
        "riskstream.events, riskstream.logs, riskstream.commands, riskstream.featuredefs"
    )
    heavy = {"boto3", "botocore", "pandas", "pyarrow", "pyspark", "numpy"}
    assert heavy_loaded_by(code, heavy) == []


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in one file, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_benchmarks_import_nothing_from_tests() -> None:
    """Benchmarks bring their own data and models (benchmarks/fixtures.py), so changing a test
    never changes what a benchmark measures."""
    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / "benchmarks").rglob("*.py"))
        for line, module in _imported(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert offenders == []
