"""The features step hands the features job the mapping's performance window (the job's report
showed its default, 1 month, for a mapping that said 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import steps
from riskstream.settings import Settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("source", "mapping", "expected"),
    [
        ("csv", {"performance_months": 12}, 12),
        ("csv", {}, None),  # the mapping leaves it to the job
        # a synthetic run's own window (names.synthetic_windows: 6 for 12 months), not a mapping's
        ("synthetic", {"performance_months": 3}, 6),
    ],
)
def test_features_step_passes_the_mappings_performance_months(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    mapping: dict[str, Any],
    expected: int | None,
) -> None:
    import etl.tasks

    path = tmp_path / "mapping.json"
    path.write_text(
        json.dumps({"entity_id": "id", "label": "y", "observation_date": "2024-01-01", **mapping})
    )
    seen: dict[str, Any] = {}

    def job(settings: Settings, run_date: str, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"performance_months": kwargs.get("performance_months") or 1}

    monkeypatch.setattr(etl.tasks, "curated_to_features", job)
    ctx = steps.StepContext(
        run_id="r1",
        run_date="2026-01-01",
        params={
            "source": source,
            "csv_path": str(tmp_path / "table.csv"),
            "csv_mapping": str(path),
            "months": 12,
        },
    )
    report = steps.curated_to_features(Settings.from_mapping({}), ctx)
    assert seen.get("performance_months") == expected
    assert report["performance_months"] == (expected or 1)
