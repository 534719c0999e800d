"""The lake's layout helpers on local folders: arrival partitions, manifests, versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl import layout
from riskstream.storage import Storage, fingerprint

pytestmark = pytest.mark.unit


def test_arrival_partitions_are_dt_and_hr_folders(tmp_path: Path) -> None:
    hour = tmp_path / "dt=2026-01-15" / "hr=03"
    hour.mkdir(parents=True)
    (hour / "shard-1-5.jsonl.gz").write_bytes(b"x")
    (hour / "_SUCCESS").write_bytes(b"")
    (tmp_path / "dt=2026-01-15" / "stray.jsonl.gz").write_bytes(b"y")  # not in an hour folder
    (tmp_path / "dt=2026-01-15" / "hr=x").mkdir()
    listed = layout.list_arrival_partitions(Storage(), str(tmp_path))
    assert list(listed) == ["dt=2026-01-15/hr=03"]
    assert [f.name for f in listed["dt=2026-01-15/hr=03"]] == ["shard-1-5.jsonl.gz"]
    before = fingerprint(listed["dt=2026-01-15/hr=03"])
    (hour / "shard-6-9.jsonl.gz").write_bytes(b"z")  # a later flush in the same hour
    again = layout.list_arrival_partitions(Storage(), str(tmp_path))
    assert fingerprint(again["dt=2026-01-15/hr=03"]) != before


def test_a_manifest_names_the_current_version_and_vacuum_drops_the_others(
    tmp_path: Path,
) -> None:
    storage, table = Storage(), str(tmp_path / "purchase")
    empty = layout.load_manifest(storage, table, "event_month")
    assert empty == {"key": "event_month", "partitions": {}}
    staged = tmp_path / "stage"
    for run in ("r1", "r2"):
        folder = staged / run / "event_month=2025-01"
        folder.mkdir(parents=True)
        (folder / "part-abc.parquet").write_bytes(run.encode())
    first = layout.upload_staged(storage, staged / "r1", table, "event_month", "r1")
    assert first == {
        "2025-01": {
            "location": "event_month=2025-01/v=r1",
            "files": ["part-00000.parquet"],
            "run_id": "r1",
        }
    }
    manifest = layout.commit(storage, table, empty, first, "r1")
    second = layout.upload_staged(storage, staged / "r2", table, "event_month", "r2")
    # Written, not committed: readers still get r1's file.
    assert layout.partition_files(table, layout.load_manifest(storage, table, "event_month")) == [
        f"{table}/event_month=2025-01/v=r1/part-00000.parquet"
    ]
    manifest = layout.commit(storage, table, manifest, second, "r2")
    files = layout.partition_files(table, manifest)
    assert [Path(f).read_bytes() for f in files] == [b"r2"]
    assert layout.vacuum(storage, table, manifest) == 1
    assert not (tmp_path / "purchase" / "event_month=2025-01" / "v=r1").exists()
    with pytest.raises(ValueError, match="partitioned by 'event_month', not 'dt'; rerun"):
        layout.load_manifest(storage, table, "dt")


def test_months_needed_reach_the_lookback_with_a_month_of_margin() -> None:
    from datetime import date

    from etl.features import FeatureWindows
    from etl.jobs.curated_to_features import months_needed

    months = months_needed([date(2005, 10, 1)], FeatureWindows(lookback_months=6))
    assert months[0] == "2005-03" and months[-1] == "2005-11"
    assert len(months) == 9
