"""Entry functions the pipeline DAG calls (each takes a Settings first; see docs/CONTRACTS.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from riskstream.settings import Settings


def score(settings: Settings, score_date: dt.date | str | None = None) -> dict[str, Any]:
    """Score the latest feature partition with the champion, then materialize each account's
    latest features into the online table (for ``GET /accounts/{id}/score``); the run report."""
    from serving.batch import run_batch
    from serving.online import materialize

    report = run_batch(settings, score_date)
    report["online"] = materialize(settings)
    return report
