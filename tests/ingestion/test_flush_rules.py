"""The consumer's flush rules, as pure functions (ingestion.landing)."""

from __future__ import annotations

import pytest

from ingestion.landing import FlushBuffer, PageEnd, after_page, replay_flush_due, size_flush_due

pytestmark = pytest.mark.unit


def _buffer(records: int, nbytes: int, started: float | None) -> FlushBuffer:
    return FlushBuffer(records=records, bytes=nbytes, started=started)


@pytest.mark.parametrize(
    ("records", "nbytes", "due"),
    [(9, 100, False), (10, 100, True), (1, 4096, True), (0, 0, False)],
)
def test_size_flush_at_either_limit(records: int, nbytes: int, due: bool) -> None:
    assert size_flush_due(_buffer(records, nbytes, 0.0), 10, 4096) is due


@pytest.mark.parametrize(
    ("seq", "pending", "due"),
    [("5", None, False), ("4", "5", False), ("5", "5", True), ("6", "5", True)],
)
def test_a_replayed_flush_is_written_when_its_last_record_is_read_again(
    seq: str, pending: str | None, due: bool
) -> None:
    assert replay_flush_due(seq, pending) is due


def _end(buffer: FlushBuffer, page: int = 3, **flags: bool) -> PageEnd:
    args = {"caught_up": False, "follow": True, "stopping": False, "replaying": False, **flags}
    return after_page(buffer, page, 10, now=10.0, buffer_seconds=2.0, **args)


def test_an_aged_buffer_flushes_near_the_tip_but_not_while_draining_a_backlog() -> None:
    aged = _buffer(5, 100, started=7.0)
    assert _end(aged, page=3) == PageEnd(flush=True, stop=False)
    assert _end(aged, page=10) == PageEnd(flush=False, stop=False)  # a full page: size decides
    assert _end(_buffer(5, 100, started=9.0), page=3) == PageEnd(flush=False, stop=False)


def test_a_drain_flushes_and_stops_when_caught_up() -> None:
    fresh = _buffer(5, 100, started=9.5)
    assert _end(fresh, caught_up=True, follow=False) == PageEnd(flush=True, stop=True)
    assert _end(fresh, caught_up=True, follow=True) == PageEnd(flush=False, stop=False)
    assert _end(fresh, stopping=True) == PageEnd(flush=True, stop=True)


def test_a_replayed_flush_is_left_for_the_next_run_when_stopping() -> None:
    aged = _buffer(5, 100, started=0.0)
    assert _end(aged, replaying=True) == PageEnd(flush=False, stop=False)
    assert _end(aged, replaying=True, stopping=True) == PageEnd(flush=False, stop=True)
    # a drain that never found the replayed records again writes what it read
    done = _end(aged, replaying=True, caught_up=True, follow=False)
    assert done == PageEnd(flush=True, stop=True)
