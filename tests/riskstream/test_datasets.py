"""The shipped data sets: found relative to the package, pinned by sha256, refused when changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingestion import taiwan
from riskstream import datasets

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_taiwan_csv_lives_in_the_project_with_its_licence_and_checksum() -> None:
    assert datasets.DATA_DIR == REPO_ROOT / "data"
    assert datasets.TAIWAN_CSV.is_relative_to(REPO_ROOT)
    assert taiwan.TAIWAN_CSV == datasets.TAIWAN_CSV == taiwan.DEFAULT_PATH
    assert datasets.sha256_of(datasets.TAIWAN_CSV) == datasets.TAIWAN_SHA256
    folder = datasets.TAIWAN_CSV.parent
    licence = (folder / "LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    for text in (licence, readme):
        assert "CC BY 4.0" in text
        assert "10.24432/C55S3H" in text
        assert datasets.TAIWAN_SHA256 in text


def test_verify_names_the_file_and_both_hashes(tmp_path: Path) -> None:
    changed = tmp_path / "copy.csv"
    changed.write_bytes(datasets.TAIWAN_CSV.read_bytes() + b"\n")
    actual = datasets.sha256_of(changed)
    assert actual != datasets.TAIWAN_SHA256
    with pytest.raises(datasets.DatasetChecksumError) as excinfo:
        datasets.verify_sha256(changed, datasets.TAIWAN_SHA256)
    message = str(excinfo.value)
    assert str(changed) in message
    assert actual in message and datasets.TAIWAN_SHA256 in message
    assert (
        datasets.verify_sha256(datasets.TAIWAN_CSV, datasets.TAIWAN_SHA256) == datasets.TAIWAN_CSV
    )


def test_taiwan_loader_refuses_a_changed_shipped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "default_of_credit_card_clients.csv"
    shutil.copyfile(datasets.TAIWAN_CSV, shipped)
    monkeypatch.setattr(taiwan, "TAIWAN_CSV", shipped)
    assert len(taiwan.load(shipped)) == 30_000  # an unchanged copy passes
    with open(shipped, "ab") as handle:
        handle.write(b"30001,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(taiwan.TaiwanDataError, match=r"sha256 [0-9a-f]{64}, expected 4edce6da"):
        taiwan.load(shipped)
