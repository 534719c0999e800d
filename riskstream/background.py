"""Work that runs beside a block of code: a thread started on entry, stopped and joined on exit.

Dependency-free; imports nothing above the foundation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def in_thread(
    target: Callable[[], object],
    stop: Callable[[], object],
    *,
    name: str,
    join_timeout: float,
) -> Iterator[threading.Thread]:
    """``target`` runs in a daemon thread of its own while the block runs; leaving the block,
    however it ends, calls ``stop`` and waits at most ``join_timeout`` seconds for the thread
    (a daemon thread still running then does not keep the process alive)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop()
        thread.join(timeout=join_timeout)
