"""Durable state for the embedded cloud: a write-ahead log of mutating requests plus snapshots.

The moto process wraps moto's WSGI application in :class:`DurableApp`. Every request runs under
one lock (moto is bound by the GIL anyway). A mutating request (not GET/HEAD/OPTIONS, and not a
known read-only JSON action such as ``GetRecords``) is applied, and when it succeeded its method,
path, headers and body are appended to ``wal.log`` and flushed to the operating system (and
fsync'ed with ``fsync=True``) *before* the response leaves the process: an acknowledged write
survives ``kill -9`` of the cloud (and, with fsync, a power loss).

Each logged request runs with moto's random generator seeded from its sequence number and with
moto's clock pinned to the time it was first applied, so replaying the log reproduces the same
generated identifiers and timestamps the client saw. Kinesis sequence numbers are counters.

A snapshot (``snapshot.pkl``: a JSON header with the format and moto versions and the last
sequence number it covers, then a pickle of every moto backend in use) is written atomically when
the log grows past a threshold and on a clean stop; it truncates the log. Restore = load the
snapshot, replay the log tail in-process. A state that cannot be restored raises
:class:`StateError` naming the file and the ways out; nothing is ever wiped silently.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import io
import json
import logging
import os
import pickle
import queue
import random
import shutil
import signal
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# 2: S3 bodies are files beside the snapshot (infra/s3_bodies.py), keys keep their digests; a
# format 1 snapshot (bodies inside it) still loads, its bodies moving to files as it does.
# 3: Kinesis records are segment files too (infra/kinesis_records.py), shards keep an index; a
# format 2 snapshot's records move to files as it loads.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
SNAPSHOT_NAME = "snapshot.pkl"
WAL_NAME = "wal.log"
PREV_WAL_NAME = "wal.prev"  # the log a background snapshot is covering, until it is done
SNAPSHOT_MAGIC = b"RISKSTREAM-CLOUD-SNAPSHOT\n"
FRAME_MAGIC = b"RSW1"
FRAME_HEADER = struct.Struct(">4sQI")  # magic, payload length, crc32 of the payload
CONTROL_PREFIX = "/_riskstream/"

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ACTION_PREFIXES = ("Get", "Describe", "List", "Scan", "Query", "BatchGet", "Search")
# JSON actions whose names read like reads but change state in moto.
MUTATING_READ_ACTIONS = frozenset({"GetActivityTask"})
# CGI keys that describe a request; everything else in a WSGI environ is per-process plumbing.
_ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REQUEST_URI",
    "RAW_URI",
    "wsgi.url_scheme",
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class StateError(RuntimeError):
    """The saved cloud state cannot be restored; the message names the file and the ways out."""


def state_error(path: Path, reason: str) -> StateError:
    directory = path.parent
    return StateError(
        f"cannot restore the local cloud from {path}: {reason}. Nothing was deleted. "
        f"Start with an empty cloud and keep the old state aside with "
        f"`riskstream cloud up --start-empty` (it moves {directory} to "
        f"{directory.name}.aside-<time>), "
        f"or move {directory} away yourself."
    )


def moto_version() -> str:
    import moto

    return str(moto.__version__)


# ---- what to log ------------------------------------------------------------------------------
def is_mutating(method: str, target: str | None) -> bool:
    """True for a request that may change the cloud's state (and so goes to the log)."""
    if method.upper() in READ_METHODS:
        return False
    if target:
        action = target.rsplit(".", 1)[-1]
        if action in MUTATING_READ_ACTIONS:
            return True
        if action.startswith(READ_ACTION_PREFIXES):
            return False
    return True


# ---- the log ----------------------------------------------------------------------------------
def encode_frame(entry: dict[str, Any]) -> bytes:
    payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload


@dataclass
class LogScan:
    entries: list[dict[str, Any]]
    good_bytes: int  # offset after the last complete frame
    torn_bytes: int  # bytes of an incomplete last frame (an unacknowledged write)


def scan_log(path: Path) -> LogScan:
    """Read every complete frame; an incomplete last frame is a torn, unacknowledged write."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LogScan([], 0, 0)
    entries: list[dict[str, Any]] = []
    offset = 0
    size = FRAME_HEADER.size
    while offset < len(data):
        if len(data) - offset < size:
            return LogScan(entries, offset, len(data) - offset)
        magic, length, crc = FRAME_HEADER.unpack_from(data, offset)
        if magic != FRAME_MAGIC:
            raise state_error(path, f"no log frame at byte {offset} (the file is corrupt)")
        end = offset + size + length
        if end > len(data):
            return LogScan(entries, offset, len(data) - offset)
        payload = data[offset + size : end]
        if zlib.crc32(payload) != crc:
            if end == len(data):  # the last frame, half written when the process died
                return LogScan(entries, offset, len(data) - offset)
            raise state_error(path, f"checksum mismatch in the log frame at byte {offset}")
        try:
            entries.append(pickle.loads(payload))
        except Exception as exc:
            raise state_error(path, f"unreadable log frame at byte {offset} ({exc})") from None
        offset = end
    return LogScan(entries, offset, 0)


# ---- snapshots --------------------------------------------------------------------------------
def _backend_dicts() -> list[Any]:
    from moto.core.base_backend import BackendDict

    return [b for b in BackendDict._instances if len(b)]


def capture_backends() -> dict[str, dict[str, Any]]:
    return {str(b.service_name): dict(b) for b in _backend_dicts()}


def install_backends(state: dict[str, dict[str, Any]]) -> None:
    from moto.backends import get_backend
    from moto.core.base_backend import BackendDict

    for service_name, accounts in state.items():
        try:
            target = get_backend(service_name)  # type: ignore[call-overload]
        except (KeyError, ValueError, ImportError) as exc:
            raise StateError(f"this moto has no backend {service_name!r} ({exc})") from None
        target.clear()
        target.update(accounts)
        if target not in BackendDict._instances:
            BackendDict._instances.append(target)


def write_snapshot(path: Path, last_seq: int, fsync: bool = True) -> int:
    """Atomically write every backend in use; return the bytes written."""
    header = {
        "format": FORMAT_VERSION,
        "moto": moto_version(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "last_seq": last_seq,
        "created": time.time(),
    }
    from infra import kinesis_records
    from infra.s3_bodies import fsync_dir, installed, naming

    bodies = installed()
    if bodies is not None and fsync:
        bodies.sync()  # no snapshot may name a body whose file a power loss could take away
    if fsync:
        kinesis_records.sync()  # nor a Kinesis record
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        handle.write(SNAPSHOT_MAGIC)
        handle.write(json.dumps(header).encode() + b"\n")
        with naming():  # which S3 bodies this snapshot needs (the others can go after it)
            pickle.dump(capture_backends(), handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
        size = handle.tell()
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
    return size


def read_snapshot_header(path: Path) -> tuple[dict[str, Any], int]:
    """The snapshot's header and the offset of its pickle; StateError when it does not match."""
    with open(path, "rb") as handle:
        magic = handle.read(len(SNAPSHOT_MAGIC))
        if magic != SNAPSHOT_MAGIC:
            raise state_error(path, "it is not a riskstream cloud snapshot")
        try:
            header = json.loads(handle.readline())
        except ValueError:
            raise state_error(path, "its header is unreadable") from None
        offset = handle.tell()
    if header.get("format") not in READABLE_FORMATS:
        raise state_error(
            path, f"snapshot format {header.get('format')!r}, this version reads {FORMAT_VERSION}"
        )
    if header.get("moto") != moto_version():
        raise state_error(
            path, f"it was written by moto {header.get('moto')}, this is moto {moto_version()}"
        )
    return header, offset


# What a package's classes need done before a snapshot that holds them is read (a patch of their
# __setstate__): registered by the server (infra.moto_server), run by find_class below.
_BEFORE_UNPICKLING: dict[str, Callable[[], None]] = {}


def before_unpickling(package: str, prepare: Callable[[], None]) -> None:
    """Run ``prepare`` before a class of ``package`` is read from a snapshot (``prepare`` must
    be idempotent: it runs at each such class)."""
    _BEFORE_UNPICKLING[package] = prepare


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        for package, prepare in _BEFORE_UNPICKLING.items():
            if module == package or module.startswith(package + "."):
                prepare()
        return super().find_class(module, name)


def load_snapshot(path: Path) -> int:
    """Install the snapshot's backends; return the last sequence number it covers."""
    header, offset = read_snapshot_header(path)
    with open(path, "rb") as handle, _collector_paused():
        handle.seek(offset)
        try:
            state = _Unpickler(handle).load()
        except Exception as exc:
            reason = f"its data is unreadable ({type(exc).__name__}: {exc})"
            raise state_error(path, reason) from None
    try:
        install_backends(state)
    except StateError as exc:
        raise state_error(path, str(exc)) from None
    gc.freeze()  # the loaded state is long-lived: later collections need not walk it again
    return int(header["last_seq"])


def item_attributes(values: dict[str, Any]) -> Any:
    """A DynamoDB item's attributes as a snapshot gives them back (see
    ``infra.moto_server._reduce_limited_size_dict``): moto's dict type, filled without its
    per-insert size check, since the item was checked when it was written."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    attrs = LimitedSizeDict()
    dict.update(attrs, values)
    return attrs


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while millions of objects are made that all stay alive: it
    would walk the growing heap again and again (a 120 MB snapshot loaded in 1.7-2.8 s with
    it, 0.4 s without)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---- determinism: seeded ids, pinned clock -----------------------------------------------------
class _Clock:
    pinned: datetime.datetime | None = None


_CLOCK = _Clock()
_real_utcnow: Callable[[], datetime.datetime] | None = None


def _pinned_utcnow() -> datetime.datetime:
    if _CLOCK.pinned is not None:
        return _CLOCK.pinned
    assert _real_utcnow is not None
    return _real_utcnow()


def install_clock() -> None:
    """Route moto's ``utcnow`` through a clock that a logged request can pin (idempotent)."""
    global _real_utcnow
    from moto.core import utils

    if _real_utcnow is None:
        _real_utcnow = utils.utcnow
    original = _real_utcnow
    utils.utcnow = _pinned_utcnow  # modules imported from now on bind the pinned clock
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.") and getattr(module, "utcnow", None) is original:
            module.utcnow = _pinned_utcnow  # type: ignore[attr-defined]


def install_upload_ids() -> None:
    """Draw S3 multipart upload ids from moto's seeded generator (idempotent).

    moto names an upload with ``os.urandom``, which no seed reaches: a replayed
    CreateMultipartUpload got a new id, the logged UploadPart that followed named the old one,
    and the restart stopped on a ``KeyError``. Same length and alphabet as moto's ids."""
    import base64

    from moto.moto_api._internal import mock_random
    from moto.s3 import models

    if getattr(models.FakeMultipart, "_riskstream_seeded_id", False):
        return
    original = models.FakeMultipart.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        raw = mock_random.getrandbits(8 * models.UPLOAD_ID_BYTES)
        text = base64.b64encode(raw.to_bytes(models.UPLOAD_ID_BYTES, "big")).decode()
        self.id = text.replace("=", "").replace("+", "").replace("/", "")

    models.FakeMultipart.__init__ = __init__  # type: ignore[method-assign]
    models.FakeMultipart._riskstream_seeded_id = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def deterministic(seed: int, at: float) -> Iterator[None]:
    """Seed moto's id generator and pin its clock for one logged request."""
    from moto.moto_api._internal import mock_random

    mock_random.seed(seed)
    random.seed(seed)
    _CLOCK.pinned = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    try:
        yield
    finally:
        _CLOCK.pinned = None


# ---- the WSGI layer ---------------------------------------------------------------------------
def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return bytes(stream.read(length)) if length > 0 else b""


def _request_record(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    keys = {k: environ[k] for k in _ENVIRON_KEYS if isinstance(environ.get(k), str)}
    headers = {k: v for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str)}
    return {
        "environ": {**keys, **headers},
        "terminated": bool(environ.get("wsgi.input_terminated")),
        "body": body,
    }


def _replay_environ(record: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, Any] = dict(record["environ"])
    environ.update(
        {
            "wsgi.input": io.BytesIO(record["body"]),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.url_scheme": environ.get("wsgi.url_scheme", "http"),
            "wsgi.input_terminated": record["terminated"],
        }
    )
    environ.setdefault("REMOTE_ADDR", "127.0.0.1")
    return environ


def _call(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the app to completion (so its effect is applied) and buffer the response."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda chunk: captured.setdefault("written", []).append(chunk)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    body = b"".join(captured.get("written", [])) + body
    return captured.get("status", "500 INTERNAL SERVER ERROR"), captured.get("headers", []), body


def _status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 500


_CAN_FORK = sys.platform.startswith("linux")


def _child_setup(parent: int) -> None:
    """In a snapshot child: die with the parent, and let go of every socket it inherited.

    A child outliving a killed parent could otherwise overwrite a newer snapshot, or hold the
    server's port while the next server starts.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                os.close(int(fd))


class Forker:
    """Forks from one thread that lives as long as the process.

    ``PR_SET_PDEATHSIG`` (:func:`_child_setup`) fires when the *thread* that forked the child
    exits, not the process: forked from a request's thread, a snapshot child was killed whenever
    that connection's thread ended first (measured: about one background snapshot in five failed
    so under a producer, each then redone in the foreground). The caller holds the request lock
    and waits, so the state the child sees is as consistent as if it had forked itself.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], None], dict[str, Any], threading.Event]] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def fork(self, child: Callable[[], None]) -> int:
        """Run ``child`` (which must end with ``os._exit``) in a forked process; its pid."""
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="forker", daemon=True)
                self._thread.start()
        done, box = threading.Event(), dict[str, Any]()
        self._jobs.put((child, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return int(box["pid"])

    def _serve(self) -> None:
        while True:
            child, box, done = self._jobs.get()
            try:
                pid = os.fork()
                if pid == 0:
                    child()
                    os._exit(1)  # never reached: the child exits itself
                box["pid"] = pid
            except BaseException as exc:  # handed to the waiting caller
                box["error"] = exc
            finally:
                done.set()


FORKER = Forker()


class DurableStore:
    """The state directory of one durable cloud: ``snapshot.pkl`` and ``wal.log``."""

    def __init__(
        self,
        directory: Path,
        fsync: bool = False,
        snapshot_bytes: int = 256 * 1024 * 1024,
        replay_budget: float = 2.0,
        replay_ceiling: float = 5.0,
    ) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.snapshot_bytes = snapshot_bytes
        self.replay_budget = replay_budget
        self.replay_ceiling = replay_ceiling
        self.last_write = 0.0  # time.monotonic() of the last logged write
        self.last_snapshot_seconds = 0.0
        self._wal_seconds = 0.0  # time the logged requests took to apply: about their replay time
        self.snapshot_path = self.directory / SNAPSHOT_NAME
        self.wal_path = self.directory / WAL_NAME
        self.prev_wal_path = self.directory / PREV_WAL_NAME
        self._child: int | None = None
        self._child_settles: tuple[list[Path], set[Path]] = ([], set())
        self._child_seq = 0
        self._child_started = 0.0
        self.next_seq = 1
        self.snapshot_seq = 0
        self._wal: io.BufferedWriter | None = None
        self._wal_bytes = 0
        self._wal_entries = 0

    # restore ------------------------------------------------------------------------------------
    def restore(self, app: WSGIApp) -> dict[str, float]:
        """Load the snapshot and replay the log tail through ``app``; return what it took."""
        started = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.snapshot_path.exists():
            self.snapshot_seq = load_snapshot(self.snapshot_path)
        from infra import kinesis_records

        try:
            kinesis_records.reconcile(truncate=True)  # the records files as the snapshot knew
        except kinesis_records.RecordsError as exc:
            raise StateError(str(exc)) from None
        loaded = time.perf_counter()
        entries: list[dict[str, Any]] = []
        for path in (self.prev_wal_path, self.wal_path):  # an unfinished background snapshot's
            scan = scan_log(path)  # log comes first
            if scan.torn_bytes:
                logger.warning(
                    "dropping %d bytes at the end of %s: a write that was never acknowledged",
                    scan.torn_bytes,
                    path,
                )
                with open(path, "r+b") as handle:
                    handle.truncate(scan.good_bytes)
            entries += scan.entries
        last = self.snapshot_seq
        replayed = 0
        for entry in entries:
            seq = int(entry["seq"])
            if seq <= last:
                continue  # already in the snapshot (a crash between snapshot and truncation)
            if seq != last + 1 and last != 0:
                raise state_error(self.wal_path, f"log sequence jumps from {last} to {seq}")
            with deterministic(seq, entry["at"]):
                status, _, body = _call(app, _replay_environ(entry))
            if _status_code(status) >= 400:
                logger.warning(
                    "replayed request %d (%s %s) answered %s: %s",
                    seq,
                    entry["environ"].get("REQUEST_METHOD"),
                    entry["environ"].get("PATH_INFO"),
                    status,
                    body[:200],
                )
            last = seq
            replayed += 1
        self.next_seq = last + 1
        if self.prev_wal_path.exists():
            self._merge_logs()
        done = time.perf_counter()
        self._wal_bytes = sum(
            p.stat().st_size for p in (self.prev_wal_path, self.wal_path) if p.exists()
        )
        self._wal_entries = replayed
        self._wal_seconds = done - loaded
        logger.info(
            "restored the local cloud from %s: snapshot %.2fs, %d requests replayed in %.2fs",
            self.directory,
            loaded - started,
            replayed,
            done - loaded,
        )
        return {"snapshot_seconds": loaded - started, "replay_seconds": done - loaded}

    def _merge_logs(self) -> None:
        """After a crash during a background snapshot: ``wal.prev`` then ``wal.log`` become one
        ``wal.log``, so the next snapshot can run in the background too. A crash in between
        leaves entries twice; a restore skips those the sequence has passed."""
        from infra.s3_bodies import fsync_dir

        merged = self.wal_path.with_suffix(".merge")
        with open(merged, "wb") as out:
            for path in (self.prev_wal_path, self.wal_path):
                if path.exists():
                    with open(path, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(merged, self.wal_path)
        fsync_dir(self.directory)
        self.prev_wal_path.unlink()

    # logging ------------------------------------------------------------------------------------
    def _open_wal(self) -> io.BufferedWriter:
        if self._wal is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._wal = open(self.wal_path, "ab")  # noqa: SIM115 - kept open for appends
        return self._wal

    def append(self, entry: dict[str, Any], applied_seconds: float = 0.0) -> None:
        frame = encode_frame(entry)
        wal = self._open_wal()
        wal.write(frame)
        wal.flush()  # in the OS: survives kill -9 of this process
        if self.fsync:
            os.fsync(wal.fileno())  # on the disk: survives a power loss
        self._wal_bytes += len(frame)
        self._wal_entries += 1
        self._wal_seconds += applied_seconds
        self.last_write = time.monotonic()

    def pending(self) -> int:
        """Logged requests not yet in a snapshot."""
        return self._wal_entries

    def busy(self) -> bool:
        """A background snapshot is being written."""
        return self._child is not None

    def clean(self) -> bool:
        """True when the snapshot on disk holds every logged write."""
        return not (self._wal_entries or self.busy() or self.prev_wal_path.exists())

    def due(self) -> bool:
        """Snapshot when replaying the log would take longer than the budget (or it is large).

        Snapshots run in a forked child (writers do not wait); the budget grows with the
        snapshot's own cost (1.5x the last one), so a large state is not snapshotted back to back,
        up to ``replay_ceiling``: what a restart replays must not grow with the state (at 100x a
        snapshot took over 10 s, so the log held up to 15 s of writes and a restart replayed up
        to twice that). A restart then costs one snapshot load plus at most about two budgets of
        replay; past the ceiling, a large state under steady writes is snapshotted back to back.
        """
        self.reap()
        if self.busy():
            return False  # a background snapshot is under way
        grown = min(1.5 * self.last_snapshot_seconds, self.replay_ceiling)
        budget = max(self.replay_budget, grown)
        return self._wal_bytes >= self.snapshot_bytes or self._wal_seconds >= budget

    def snapshot_in_background(self) -> bool:
        """Fork a child that writes the snapshot while writers go on with a fresh log.

        The child sees the state as of the fork (copy-on-write), under the request lock, so it is
        consistent. The current log becomes ``wal.prev`` until the child is done; a restore in
        between replays ``wal.prev`` and then ``wal.log``. False when one already runs or the
        platform cannot do it, or the last one failed (the caller then snapshots in the
        foreground); True when one was started or already runs.
        """
        self.reap()
        if self._child is not None:
            return True  # one is under way; it will be collected by a later request
        if self.prev_wal_path.exists() or not _CAN_FORK:
            return False
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        if self.wal_path.exists():
            os.replace(self.wal_path, self.prev_wal_path)
        seq = self.next_seq - 1
        parent = os.getpid()

        def child() -> None:  # no logging, no locks, no sockets; exit without cleanup
            code = 1
            try:
                _child_setup(parent)
                write_snapshot(self.snapshot_path, seq, fsync=True)
                code = 0
            finally:
                os._exit(code)

        pid = FORKER.fork(child)
        from infra import kinesis_records

        self._child_settles = kinesis_records.detach()  # what the child's snapshot settles
        self._child, self._child_seq, self._child_started = pid, seq, time.perf_counter()
        self._wal_bytes = 0
        self._wal_entries = 0
        self._wal_seconds = 0.0
        return True

    def reap(self, wait: bool = False) -> None:
        """Collect a finished background snapshot: on success its log segment goes."""
        if self._child is None:
            return
        pid, status = os.waitpid(self._child, 0 if wait else os.WNOHANG)
        if pid == 0:
            return
        self._child = None
        from infra import kinesis_records

        ok = os.waitstatus_to_exitcode(status) == 0
        kinesis_records.settle(self._child_settles, ok)  # on success, trimmed segments go
        self._child_settles = ([], set())
        if ok:
            self.snapshot_seq = self._child_seq
            self.prev_wal_path.unlink(missing_ok=True)
            self.last_snapshot_seconds = time.perf_counter() - self._child_started
            logger.info(
                "background snapshot of the local cloud at seq %d in %.2fs",
                self._child_seq,
                self.last_snapshot_seconds,
            )
        else:
            logger.error(
                "background snapshot failed (status %s); %s keeps its writes, the next snapshot "
                "runs in the foreground",
                status,
                self.prev_wal_path,
            )

    def snapshot(self) -> int:
        """Write a snapshot of everything applied so far and start an empty log."""
        self.reap(wait=True)
        started = time.perf_counter()
        size = write_snapshot(self.snapshot_path, self.next_seq - 1, fsync=True)
        self.snapshot_seq = self.next_seq - 1
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        self.prev_wal_path.unlink(missing_ok=True)
        with open(self.wal_path, "wb") as handle:  # truncate: the snapshot holds it all
            handle.flush()
            os.fsync(handle.fileno())
        self._wal_bytes = 0
        self._wal_entries = 0
        self._wal_seconds = 0.0
        from infra.s3_bodies import collect_garbage

        collect_garbage()  # the snapshot is the whole state now: bodies it does not name go
        from infra import kinesis_records

        kinesis_records.reconcile(truncate=False)  # and Kinesis records files it does not name
        self.last_snapshot_seconds = time.perf_counter() - started
        logger.info(
            "snapshot of the local cloud: %d bytes at seq %d in %.2fs",
            size,
            self.snapshot_seq,
            self.last_snapshot_seconds,
        )
        return size

    def close(self) -> None:
        if self._wal is not None:
            self._wal.close()
            self._wal = None


class DurableApp:
    """WSGI middleware: apply, log acknowledged writes, then answer; all under one lock."""

    def __init__(self, app: WSGIApp, store: DurableStore, quiet_seconds: float = 2.0) -> None:
        self.app = app
        self.store = store
        self.lock = threading.RLock()
        self.quiet_seconds = quiet_seconds
        self._stopping = threading.Event()
        self._quiet = threading.Thread(target=self._snapshot_when_quiet, name="quiet-snapshot")
        self._quiet.daemon = True
        self._quiet.start()

    def _snapshot_when_quiet(self) -> None:
        """Once writes pause for ``quiet_seconds``, snapshot what the log holds (in the
        background) and collect a finished snapshot: the state a run leaves behind restarts
        from its snapshot alone, with nothing to replay, not from up to two budgets of log."""
        while not self._stopping.wait(min(self.quiet_seconds, 0.5)):
            if not self.lock.acquire(blocking=False):
                continue  # a request runs: not quiet
            try:
                self.store.reap()
                quiet = time.monotonic() - self.store.last_write >= self.quiet_seconds
                if quiet and self.store.pending() and not self.store.busy():
                    self._snapshot_quietly()
            except Exception:  # never let the thread die: the next pause tries again
                logger.exception("quiet snapshot of the local cloud failed; the log keeps it")
            finally:
                self.lock.release()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, path, start_response)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        with self.lock:
            if not is_mutating(method, environ.get("HTTP_X_AMZ_TARGET")):
                status, headers, body = _call(self.app, environ)
            else:
                body_in = _read_body(environ)
                environ["wsgi.input"] = io.BytesIO(body_in)
                record = _request_record(environ, body_in)
                seq, at = self.store.next_seq, time.time()
                applying = time.perf_counter()
                with deterministic(seq, at):
                    status, headers, body = _call(self.app, environ)
                if _status_code(status) < 400:
                    applied = time.perf_counter() - applying
                    self.store.append({"seq": seq, "at": at, **record}, applied)
                    self.store.next_seq = seq + 1
                    if self.store.due():
                        self._snapshot_quietly()
        start_response(status, headers)
        return [body]

    def _snapshot_quietly(self) -> None:
        """A failed snapshot must not fail the write that triggered it: the log still has it."""
        try:
            if not self.store.snapshot_in_background():
                self.store.snapshot()
        except Exception:
            logger.exception(
                "snapshot of the local cloud failed; the log keeps every write, retrying later"
            )
            self.store.replay_budget *= 2

    def _control(
        self, environ: dict[str, Any], path: str, start_response: Callable[..., Any]
    ) -> list[bytes]:
        """``POST /_riskstream/snapshot`` (snapshot now), ``GET /_riskstream/snapshot`` (export)."""
        name = path[len(CONTROL_PREFIX) :].strip("/")
        method = str(environ.get("REQUEST_METHOD", "GET"))
        if name == "snapshot" and method == "POST":
            with self.lock:
                size = self.store.snapshot()
            payload = json.dumps({"bytes": size, "seq": self.store.snapshot_seq}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [payload]
        if name == "snapshot" and method == "GET":
            with self.lock:
                self.store.snapshot()
                payload = self.store.snapshot_path.read_bytes()
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return [payload]
        start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        return [b"unknown control path"]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Snapshot on a clean stop so the next start replays nothing (best effort)."""
        self._stopping.set()
        if not self.lock.acquire(timeout=timeout):
            logger.warning("a request still runs; the log alone will restore the state")
            return
        try:
            if not self.store.clean():
                self.store.snapshot()
            self.store.close()
        finally:
            self.lock.release()
