"""Progress of a long phase (producing, landing, an ETL job, a training, batch scoring) for the
person waiting on it: how much is done of how much, the rate and the time left.

A :class:`Progress` writes a line to its log every ``every`` seconds (plain lines, no carriage
returns, so a log file stays readable) and, given a ``sink``, keeps a small JSON file up to date
(at most once a second) that `riskstream run` reads to show every running phase while it waits on
the orchestrator. The sink files live under ``<state dir>/progress/`` (:func:`progress_dir`).
Dependency-free; imports nothing above the foundation.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROGRESS_DIRNAME = "progress"


def progress_dir(state_dir: Path) -> Path:
    """Where the running phases of this state directory publish their progress."""
    return Path(state_dir) / PROGRESS_DIRNAME


def progress_file(state_dir: Path, label: str) -> Path:
    """The sink of the phase called ``label`` (one file per phase; a rerun overwrites it)."""
    slug = "".join(c if c.isalnum() else "-" for c in label.strip().lower()).strip("-")
    return progress_dir(state_dir) / f"{slug or 'phase'}.json"


def human_count(n: float) -> str:
    """``1234`` -> ``1,234``; ``1_234_567`` -> ``1.23M``: short enough for one console line."""
    if n >= 10_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    if n >= 100_000:
        return f"{n / 1_000:.0f}k"
    return f"{n:,.0f}"


def human_seconds(seconds: float) -> str:
    """``42`` -> ``42s``; ``190`` -> ``3m10s``; ``3725`` -> ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass(frozen=True)
class Snapshot:
    """One phase's progress at one moment (what the sink file holds)."""

    label: str
    done: float
    total: float | None
    unit: str
    elapsed: float
    finished: bool = False
    updated: float = 0.0  # wall-clock time of this snapshot (time.time())

    @property
    def rate(self) -> float | None:
        """Units per second so far (None before the first second)."""
        return self.done / self.elapsed if self.elapsed >= 1.0 and self.done > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, when the total is known and work has begun."""
        rate = self.rate
        if self.total is None or rate is None or self.finished:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def line(self) -> str:
        """``produce: 1.20M/17.0M events (7%), 9,012 events/s, 2m10s so far, ETA 29m30s``."""
        parts = [f"{self.label}: {human_count(self.done)}"]
        if self.total:
            parts[0] += f"/{human_count(self.total)} {self.unit} ({self.done / self.total:.0%})"
        else:
            parts[0] += f" {self.unit}"
        rate = self.rate
        if rate is not None:
            parts.append(f"{human_count(rate) if rate >= 10 else f'{rate:.2f}'} {self.unit}/s")
        parts.append(f"{human_seconds(self.elapsed)} so far")
        if self.finished:
            parts.append("done")
        elif self.eta is not None:
            parts.append(f"ETA {human_seconds(self.eta)}")
        return ", ".join(parts)


def _log_line(text: str) -> None:
    logger.info("progress %s", text)


@dataclass(eq=False)
class Progress:
    """Counts units of one phase; logs a line every ``every`` seconds and keeps ``sink`` fresh.

    Thread-safe (the producer's lanes update it side by side). ``total`` may be None (unknown)
    or set later; ``close()`` (or leaving the ``with`` block) writes the final state."""

    label: str
    total: float | None = None
    unit: str = "rows"
    _: KW_ONLY
    sink: Path | None = None
    every: float = 30.0
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = _log_line
    done: float = field(default=0.0, init=False)
    finished: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()
        self._logged = self._started
        self._written = float("-inf")
        self._lock = threading.Lock()
        self._publish(force=True)

    @classmethod
    def in_state_dir(
        cls, state_dir: Path | None, label: str, total: float | None = None, unit: str = "rows"
    ) -> Progress:
        """A progress whose sink is the phase's file under ``state_dir`` (none if None)."""
        sink = progress_file(state_dir, label) if state_dir is not None else None
        return cls(label, total, unit, sink=sink)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            label=self.label,
            done=self.done,
            total=self.total,
            unit=self.unit,
            elapsed=self.clock() - self._started,
            finished=self.finished,
            updated=time.time(),
        )

    def update(self, n: float = 1) -> None:
        """``n`` more units done."""
        with self._lock:
            self.done += n
            self._tick()

    def set(self, done: float, total: float | None = None) -> None:
        """``done`` units done in all (and the total, when it became known)."""
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total
            self._tick()

    def close(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.finished = True
            self.log(self.snapshot().line())
            self._publish(force=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tick(self) -> None:
        now = self.clock()
        if now - self._logged >= self.every:
            self._logged = now
            self.log(self.snapshot().line())
        self._publish()

    def _publish(self, force: bool = False) -> None:
        if self.sink is None:
            return
        now = self.clock()
        if not force and now - self._written < 1.0:
            return
        self._written = now
        try:
            self.sink.parent.mkdir(parents=True, exist_ok=True)
            partial = self.sink.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            partial.write_text(json.dumps(asdict(self.snapshot())))
            partial.replace(self.sink)  # readers never see half a file
        except OSError as exc:  # progress only informs: never fail the phase for it
            logger.debug("could not write progress to %s: %s", self.sink, exc)


def read_progress(state_dir: Path, since: float = 0.0) -> list[Snapshot]:
    """The phases that published under ``state_dir`` since ``since`` (wall clock), oldest first;
    files that cannot be read (being replaced, from another version) are skipped."""
    found: list[Snapshot] = []
    folder = progress_dir(state_dir)
    if not folder.is_dir():
        return found
    for path in folder.glob("*.json"):
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            snap = Snapshot(**data)
        except (OSError, ValueError, TypeError):
            continue
        if snap.updated >= since:
            found.append(snap)
    return sorted(found, key=lambda s: s.updated - s.elapsed)
