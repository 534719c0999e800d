"""S3 object bodies on disk for the durable cloud, content-addressed, instead of in memory.

moto keeps each object's body in a ``SpooledTemporaryFile`` on its ``FakeKey`` (in memory below
about 5 MB) and pickles the bytes into every snapshot, so the cloud's memory, its snapshot and its
restart time all grew with the data. Here a key holds only the SHA-256 of its body; the body is a
file ``bodies/<first two hex digits>/<digest>`` under the cloud's state directory, written once
(the same bytes under several keys, a copy, a re-upload, are one file) and never changed.

Durability is the log's (infra/durable.py): a new body is written to a temporary file, fsync'ed
and renamed into place while its request is applied, that is before the request is logged and
answered; so an acknowledged object survives ``kill -9`` (and, with ``--fsync``, whose renames
are made durable too, a power loss). Before a snapshot replaces the log, every body folder is
fsync'ed, so no snapshot names a body a power loss could take away. Bodies no key refers to any
more are deleted after a foreground snapshot (a clean stop, a start, an export): those that
snapshot, then the whole state, does not name (:func:`naming` records them as it is pickled).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BODIES_NAME = "bodies"
ENCODING = "utf-8"


class BodyStore:
    """Immutable, content-addressed files under ``directory``."""

    def __init__(self, directory: Path, fsync_renames: bool = False) -> None:
        self.directory = Path(directory)
        self.fsync_renames = fsync_renames
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.directory / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (durably: fsync'ed before this returns); return its digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync_renames:
            fsync_dir(target.parent)
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the body {digest} of an S3 object is missing from {self.directory}: the cloud's "
                "state was copied without its bodies folder; import a whole export instead"
            ) from None

    def sync(self) -> None:
        """Make every rename so far durable (before a snapshot replaces the log)."""
        for folder in self.directory.iterdir():
            if folder.is_dir():
                fsync_dir(folder)
        fsync_dir(self.directory)

    def files(self) -> list[Path]:
        return [p for p in self.directory.glob("??/*") if not p.name.startswith(".tmp-")]

    def collect(self, live: set[str]) -> int:
        """Delete bodies not in ``live`` (and temporary files a crash left); return how many."""
        removed = 0
        for path in self.directory.glob("??/*"):
            if path.name.startswith(".tmp-") or path.name not in live:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed += 1
        return removed


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Installed:
    store: BodyStore | None = None
    naming: set[str] | None = None  # while a snapshot is pickled: the digests it names
    named: set[str] | None = None  # those of the last snapshot written


def installed() -> BodyStore | None:
    """The store moto's keys write to, once :func:`install` ran in this process."""
    return _Installed.store


def install(directory: Path, fsync_renames: bool = False) -> BodyStore:
    """Route every S3 key's body through a :class:`BodyStore` in ``directory`` (this process)."""
    from moto.s3.models import FakeKey

    store = BodyStore(directory, fsync_renames)
    _Installed.store = store
    if not getattr(FakeKey, "_riskstream_bodies", False):
        FakeKey.value = property(_get_value, _set_value)  # type: ignore[assignment, method-assign]
        FakeKey.etag = property(_etag)  # type: ignore[assignment, method-assign]
        FakeKey.__getstate__ = _getstate  # type: ignore[method-assign]
        FakeKey.__setstate__ = _setstate  # type: ignore[method-assign]
        FakeKey._riskstream_bodies = True  # type: ignore[attr-defined]
    return store


def _store() -> BodyStore:
    store = _Installed.store
    if store is None:
        raise RuntimeError("S3 bodies on disk were not installed (infra.s3_bodies.install)")
    return store


def _get_value(self: Any) -> bytes:
    return _store().get(self.__dict__["_body"])


def _set_value(self: Any, new_value: bytes | str) -> None:
    if isinstance(new_value, str):  # as moto does, for its own tests
        new_value = new_value.encode(ENCODING)
    self._body = _store().put(new_value)
    self.contentsize = len(new_value)
    if self.__dict__.get("_etag") is None:  # moto computes it lazily from the buffer
        self._etag = hashlib.md5(new_value, usedforsecurity=False).hexdigest()


def _etag(self: Any) -> str:
    if self._etag is None:
        self._etag = hashlib.md5(self.value, usedforsecurity=False).hexdigest()
    return f'"{self._etag}"'


def _getstate(self: Any) -> dict[str, Any]:
    """What a snapshot keeps of a key: its metadata and its body's digest, not the body."""
    state = self.__dict__.copy()
    state.pop("_value_buffer", None)
    state.pop("lock", None)
    if _Installed.naming is not None and "_body" in state:
        _Installed.naming.add(str(state["_body"]))
    return state


def _setstate(self: Any, state: dict[str, Any]) -> None:
    state = dict(state)
    body = state.pop("value", None)  # a key pickled by moto itself (a snapshot from before)
    self.__dict__.update(state)
    self._value_buffer = io.BytesIO()  # never written; moto's dispose closes it
    self.lock = threading.Lock()
    if body is not None and "_body" not in state:
        self.value = body


@contextlib.contextmanager
def naming() -> Iterator[set[str]]:
    """Collect the digests of the keys pickled inside the block: the bodies a snapshot names."""
    named: set[str] = set()
    _Installed.naming = named
    try:
        yield named
    finally:
        _Installed.naming = None
        _Installed.named = named


def collect_garbage() -> int:
    """Delete the bodies the last snapshot written in this process does not name. Call it only
    when that snapshot is the whole state (a foreground snapshot, under the request lock): then no
    key in memory or on disk needs them. Returns how many went."""
    store, named = _Installed.store, _Installed.named
    if store is None or named is None:
        return 0
    removed = store.collect(named)
    if removed:
        logger.info("deleted %d S3 bodies no object refers to any more", removed)
    return removed
