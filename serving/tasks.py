"""Entry functions the pipeline DAG calls (each takes a Settings first; see docs/CONTRACTS.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from riskstream.settings import Settings


def score(settings: Settings, score_date: dt.date | str | None = None) -> dict[str, Any]:
    """Score the latest feature partition with the champion; return the run report."""
    from serving.batch import run_batch

    return run_batch(settings, score_date)
