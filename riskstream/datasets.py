"""Data sets shipped inside the project (``data/`` at the top of the checkout), found relative to
this package, never by a machine's absolute path; each is checked against a pinned sha256.

Stdlib only, so importing it costs nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TAIWAN_CSV = DATA_DIR / "taiwan_default" / "default_of_credit_card_clients.csv"
TAIWAN_SHA256 = "4edce6da569b2c30788a85fd98a9bafb1a983e8ca1a7aac875dd7ff853cbd0bb"


class DatasetChecksumError(ValueError):
    """A shipped data file is not the one the project pinned; the message names both hashes."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> Path:
    """Return ``path`` when its sha256 is ``expected``; otherwise raise naming the file and both."""
    path = Path(path)
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetChecksumError(
            f"{path} has sha256 {actual}, expected {expected}: the file was changed or is not "
            "the shipped copy. Restore it from the repository (git checkout -- data/) or point "
            "--path at your own file."
        )
    return path
