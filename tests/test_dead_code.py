"""No dead code: vulture, with pyproject.toml's [tool.vulture], finds nothing to delete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]
VULTURE = str(Path(sys.executable).with_name("vulture"))


def _vulture(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VULTURE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_vulture_finds_no_dead_code() -> None:
    result = _vulture()
    assert result.returncode == 0, (
        "dead code (delete it; if a framework uses it, name it in tests/vulture_whitelist.py):\n"
        + result.stdout[-4000:]
        + result.stderr[-2000:]
    )


def test_the_settings_still_catch_a_function_nobody_calls(tmp_path: Path) -> None:
    """The project's threshold and ignore lists, applied to a module with one dead function."""
    module = tmp_path / "example.py"
    module.write_text(
        "def used() -> int:\n    return 1\n\n\n"
        "def forgotten() -> int:\n    return 2\n\n\n"
        "print(used())\n"
    )
    result = _vulture("--config", str(REPO / "pyproject.toml"), str(module), cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "unused function 'forgotten'" in result.stdout
    assert "'used'" not in result.stdout
