"""Which heavy libraries an import loads, asked of a fresh interpreter (this one has them all)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def heavy_loaded_by(code: str, heavy: set[str]) -> list[str]:
    """The modules of ``heavy`` a new interpreter in the repository holds after running
    ``code`` (the imports under test, and any check of them); it must run cleanly."""
    probe = (
        f"{code}\nimport sys\nprint(','.join(sorted(set({sorted(heavy)!r}) & set(sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]
