"""What the running live scorer says about itself, read over HTTP (light: standard library
only, so `riskstream status` and `make run`'s summary load nothing heavy)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from riskstream.settings import Settings

RATE_WINDOW = 10.0  # the live scorer's events per second are over the last this many seconds
RECENT_CHANGES = 20  # risk events the live scorer's status keeps (the dashboard's live panel)


def read_status(settings: Settings, timeout: float = 2.0) -> dict[str, Any] | None:
    """The running live scorer's status, or None when none answers at ``settings.live_url``."""
    try:
        with urllib.request.urlopen(settings.live_url + "/health", timeout=timeout) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except (urllib.error.URLError, OSError, ValueError):
        return None


def status_lines(status: dict[str, Any] | None) -> list[str]:
    """What ``riskstream live status`` and ``make run``'s summary print."""
    if status is None:
        return ["no live scorer answers"]
    lags = ", ".join(
        f"{shard} {'?' if s['lag_ms'] is None else s['lag_ms']} ms"
        for shard, s in status["shards"].items()
    )
    champion = status["model"]
    lines = [
        f"lag per shard: {lags or 'no shard read yet'}",
        f"{status['events_per_second']} events/s over the last {RATE_WINDOW:.0f} s; "
        f"{status['events']} read, {status['applied']} applied, {status['duplicates']} "
        f"duplicates, {status['invalid']} invalid, {status['risk_events']} risk events",
        f"champion v{champion['version']}" if champion["version"] else "no champion yet",
    ]
    if champion["switches"] and champion["switches"][-1]["from"] is not None:
        last = champion["switches"][-1]
        when = datetime.fromtimestamp(last["at"], UTC).isoformat(timespec="seconds")
        lines.append(f"switched from v{last['from']} to v{last['to']} at {when}")
    if status.get("last_error"):
        lines.append(f"last error: {status['last_error']}")
    return lines


def live_notes(settings: Settings) -> list[str]:
    """``riskstream live status``'s lines: lag per shard, events per second, the champion."""
    return [
        f"stream {settings.stream_name} -> {settings.online_table}; risk events on "
        f"{settings.risk_stream_name}",
        *status_lines(read_status(settings)),
    ]
