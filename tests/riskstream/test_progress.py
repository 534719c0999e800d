"""Progress of a long phase: the line people read, the periodic log, the sink file the run's
console reads (no server: a fake clock and a temp folder)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from pipeline.run import ProgressPrinter
from riskstream.progress import (
    Progress,
    Snapshot,
    human_count,
    human_seconds,
    progress_file,
    read_progress,
)

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("n", "text"), [(999, "999"), (12_345, "12,345"), (170_000, "170k"), (1_700_000, "1.70M")]
)
def test_counts_are_short(n: int, text: str) -> None:
    assert human_count(n) == text


@pytest.mark.parametrize(("s", "text"), [(42, "42s"), (190, "3m10s"), (3725, "1h02m")])
def test_durations_are_short(s: float, text: str) -> None:
    assert human_seconds(s) == text


def test_the_line_has_done_total_rate_and_eta() -> None:
    snap = Snapshot("produce", 1_000_000, 4_000_000, "events", elapsed=100.0)
    assert snap.rate == 10_000
    assert snap.eta == 300
    assert snap.line() == (
        "produce: 1.00M/4.00M events (25%), 10,000 events/s, 1m40s so far, ETA 5m00s"
    )
    assert Snapshot("land", 500, None, "records", 10.0).line() == (
        "land: 500 records, 50 records/s, 10s so far"
    )
    assert Snapshot("score", 10, 10, "accounts", 2.0, finished=True).eta is None


def test_it_logs_a_plain_line_every_interval_and_at_the_end() -> None:
    clock, lines = Clock(), []
    progress = Progress("land", 100, "records", every=30.0, clock=clock, log=lines.append)
    for _ in range(10):
        clock.now += 5.0
        progress.update(5)
    assert lines == ["land: 30/100 records (30%), 1.00 records/s, 30s so far, ETA 1m10s"]
    progress.close()
    progress.close()  # once only
    assert len(lines) == 2 and lines[-1].endswith("done")
    assert all("\r" not in line for line in lines)


def test_the_sink_is_what_the_console_reads(tmp_path: Path) -> None:
    clock = Clock()
    since = time.time() - 1
    progress = Progress(
        "train xgb", None, "fits", sink=progress_file(tmp_path, "train xgb"), clock=clock
    )
    progress.set(0, total=16)
    clock.now += 2.0
    progress.update(4)
    (snap,) = read_progress(tmp_path, since)
    assert (snap.label, snap.done, snap.total, snap.finished) == ("train xgb", 4, 16, False)
    assert progress_file(tmp_path, "train xgb").name == "train-xgb.json"
    progress.close()
    assert read_progress(tmp_path, since)[0].finished
    assert read_progress(tmp_path, time.time() + 60) == []  # an older run's file is not shown
    (tmp_path / "progress" / "broken.json").write_text("{")
    assert len(read_progress(tmp_path, since)) == 1


def test_the_console_prints_periodic_lines_when_not_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(tmp_path, time.time() - 1, tty=False, every=30.0, out=out)
    clock = Clock()
    sink = progress_file(tmp_path, "produce")
    progress = Progress("produce", 100, "events", sink=sink, clock=clock)
    clock.now += 2.0  # the sink is written at most once a second
    progress.update(10)
    printer.tick()
    printer.tick()  # within the interval: nothing more
    assert out.getvalue().count("produce: 10/100 events") == 1
    assert "\r" not in out.getvalue()
    progress.close()
    printer.tick()  # a finished phase is not shown
    assert out.getvalue().count("produce") == 1


def test_on_a_terminal_one_line_is_rewritten(tmp_path: Path) -> None:
    out = io.StringIO()
    printer = ProgressPrinter(tmp_path, time.time() - 1, tty=True, out=out)
    clock = Clock()
    progress = Progress("score", 50, "accounts", sink=progress_file(tmp_path, "s"), clock=clock)
    clock.now += 2.0
    progress.update(5)
    printer.tick()
    printer.tick()
    printer.clear()
    text = out.getvalue()
    assert text.count("score: 5/50 accounts") == 2
    assert text.count("\r\x1b[K") == 2 and "\n" not in text
