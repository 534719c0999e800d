"""Kinesis records on disk for the durable cloud: per shard, append-only segment files and a
compact index in memory, instead of one moto ``Record`` object per record.

moto keeps every record of a shard as a ``Record`` (partition key, base64 data string, sequence
number, hash key, a datetime and a float) in an ``OrderedDict``, about 760 bytes of memory each,
all pickled into every snapshot. Here a shard's ``records`` is a :class:`ShardRecords`: the
records' bytes are frames appended to files ``kinesis/<store id>/<first sequence number>.seg``
under the cloud's state directory (a new file every :data:`SEGMENT_RECORDS` records or
:data:`SEGMENT_BYTES`), and memory holds, per record, its offset in its file (4 bytes) and its
arrival time in microseconds (8 bytes). Sequence numbers of a shard are consecutive (the launcher
numbers them so), so a record's number is its position. A ``Record`` is built only when one is
read (GetRecords, a reshard), from one read per segment and page.

Durability is the log's (infra/durable.py), as for S3 bodies: an acknowledged PutRecords is in
the log, so its records need not be on the disk before the answer; a record's bytes are written
(``pwrite``, straight to the operating system) while the request is applied. A snapshot holds
each shard's index (file names, sizes, offsets, times), never the data; before it replaces the
log, every segment written since the last one is fsync'ed. A restore truncates each segment to the
size the snapshot recorded and deletes the files it does not name (written after it, by the
writes the log replays again), so the replay rebuilds the same files.

Trimming by retention drops records from the head of the index; a segment whose records are all
gone is deleted once a snapshot that no longer names it is on disk (a background snapshot's, when
it is collected; a foreground one's at once), never before, so the snapshot on disk can always be
restored. The same holds for the stores of deleted streams and of shards emptied by a split.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import datetime
import logging
import math
import os
import shutil
import struct
import uuid
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECORDS_NAME = "kinesis"
SEGMENT_RECORDS = 65_536
SEGMENT_BYTES = 64 * 2**20
SUFFIX = ".seg"
# data length, partition key length, explicit hash key length (NO_KEY: none), how data is kept
_HEADER = struct.Struct(">IHHB")
_NO_KEY = 0xFFFF
_RAW, _TEXT, _NONE = 0, 1, 2  # data kept decoded from its base64 / as its text / None
_EPOCH = datetime.datetime(1970, 1, 1)
_MICROSECOND = datetime.timedelta(microseconds=1)
PAGE = 1_000  # records read at a time when a whole shard is walked (a reshard)


class RecordsError(RuntimeError):
    """A shard's records files do not match the snapshot; the message says what to do."""


class _Installed:
    root: Path | None = None
    segment_records = SEGMENT_RECORDS
    pending: list[Path] = []  # segments and stores whose records are gone
    dirty: set[Path] = set()  # files and folders changed since the last sync


def use_directory(root: Path | None, segment_records: int = SEGMENT_RECORDS) -> Path | None:
    """Keep the records of shards made from now on under ``root``, a new segment file every
    ``segment_records`` records; return the previous root."""
    previous = _Installed.root
    _Installed.root = None if root is None else Path(root)
    _Installed.segment_records = segment_records
    _Installed.pending, _Installed.dirty = [], set()
    return previous


def installed() -> Path | None:
    return _Installed.root


def _root() -> Path:
    root = _Installed.root
    if root is None:
        raise RuntimeError("Kinesis records on disk were not installed (infra.kinesis_records)")
    return root


def micros(moment: datetime.datetime) -> int:
    """A naive UTC datetime (moto's clock) as integer microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def _threshold(seconds: float) -> int:
    """The least integer ``us`` with ``us / 1e6 >= seconds``: comparing a record's microseconds
    with it is exactly comparing moto's float ``created_at`` with ``seconds``."""
    us = math.ceil(seconds * 1e6)
    while (us - 1) / 1e6 >= seconds:
        us -= 1
    while us / 1e6 < seconds:
        us += 1
    return us


def encode(partition_key: str, data: str | None, explicit_hash_key: str | None) -> bytes:
    """One record's frame: a header, its data (decoded when its base64 is canonical), its keys."""
    if data is None:
        kind, body = _NONE, b""
    elif not isinstance(data, str):
        raise TypeError(f"a Kinesis record's data must be base64 text, not {type(data).__name__}")
    else:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = None
        if raw is not None and base64.b64encode(raw).decode("ascii") == data:
            kind, body = _RAW, raw
        else:
            kind, body = _TEXT, data.encode("utf-8")
    key = partition_key.encode("utf-8")
    hash_key = b"" if explicit_hash_key is None else str(explicit_hash_key).encode("utf-8")
    if len(key) >= _NO_KEY or len(hash_key) >= _NO_KEY:
        raise ValueError("a Kinesis partition key or explicit hash key is too long")
    hash_length = _NO_KEY if explicit_hash_key is None else len(hash_key)
    return _HEADER.pack(len(body), len(key), hash_length, kind) + body + key + hash_key


def decode(buffer: bytes | memoryview, offset: int = 0) -> tuple[str, str | None, str | None]:
    """(partition key, data as moto keeps it, explicit hash key) of the frame at ``offset``."""
    length, key_length, hash_length, kind = _HEADER.unpack_from(buffer, offset)
    at = offset + _HEADER.size
    body = bytes(buffer[at : at + length])
    at += length
    key = bytes(buffer[at : at + key_length]).decode("utf-8")
    at += key_length
    hash_key = None
    if hash_length != _NO_KEY:
        hash_key = bytes(buffer[at : at + hash_length]).decode("utf-8")
    if kind == _RAW:
        data: str | None = base64.b64encode(body).decode("ascii")
    elif kind == _TEXT:
        data = body.decode("utf-8")
    else:
        data = None
    return key, data, hash_key


def _record(seq: int, us: int, fields: tuple[str, str | None, str | None]) -> Any:
    """moto's ``Record``, built without its constructor (which reads the clock) and without
    moto's ``BaseModel.__new__``, which would keep every record ever read in a class-level list
    for its dashboard."""
    from moto.kinesis.models import Record

    record = object.__new__(Record)
    record.partition_key, record.data, record.explicit_hash_key = fields
    record.sequence_number = seq
    record.created_at_datetime = _EPOCH + datetime.timedelta(microseconds=us)
    record.created_at = us / 1e6
    return record


class _Segment:
    """One file of a shard's records: its first sequence number, size, offsets and times."""

    __slots__ = ("first", "offsets", "ordered", "size", "times")

    def __init__(self, first: int) -> None:
        self.first = first
        self.size = 0
        self.offsets = array("I")
        self.times = array("q")
        self.ordered = True  # arrival times never go down in it (a clock may step back)

    @property
    def name(self) -> str:
        return f"{self.first:020d}{SUFFIX}"

    def __getstate__(self) -> tuple[int, int, array[int], array[int], bool]:
        return self.first, self.size, self.offsets, self.times, self.ordered

    def __setstate__(self, state: tuple[int, int, array[int], array[int], bool]) -> None:
        self.first, self.size, self.offsets, self.times, self.ordered = state


class ShardRecords:
    """A shard's records on disk, behaving as moto's ``OrderedDict`` of sequence number to
    ``Record`` for everything moto and the launcher do with it."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex  # a folder of its own: a re-created stream never shares it
        self.segments: list[_Segment] = []
        self.firsts: list[int] = []  # each segment's first sequence number, for bisect
        self.head = 0  # records of the first segment already trimmed
        self.count = 0
        self._fd: int | None = None  # the last segment, open for writing
        self._tail_path: Path | None = None  # and its path

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> ShardRecords:
        """A store holding moto ``Record`` objects (a shard pickled before records were on disk)."""
        store = cls()
        for record in records:
            store.append(
                int(record.sequence_number),
                record.partition_key,
                record.data,
                record.explicit_hash_key,
                micros(record.created_at_datetime),
            )
        return store

    # pickling: the index, never the data ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"id": self.id, "segments": self.segments, "head": self.head, "count": self.count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.id, self.segments = state["id"], state["segments"]
        self.head, self.count = state["head"], state["count"]
        self.firsts = [s.first for s in self.segments]
        self._fd = None
        self._tail_path = None

    # where things are -------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return _root() / self.id

    def path(self, segment: _Segment) -> Path:
        return self.directory / segment.name

    @property
    def first(self) -> int:
        return self.segments[0].first + self.head

    @property
    def last(self) -> int:
        tail = self.segments[-1]
        return tail.first + len(tail.offsets) - 1

    def _locate(self, seq: int) -> tuple[_Segment, int]:
        if not self.count or not self.first <= seq <= self.last:
            raise KeyError(seq)
        segment = self.segments[bisect.bisect_right(self.firsts, seq) - 1]
        return segment, seq - segment.first

    # writing ----------------------------------------------------------------------------------
    def append(
        self,
        seq: int,
        partition_key: str,
        data: str | None,
        explicit_hash_key: str | None,
        us: int,
    ) -> None:
        """Add the record numbered ``seq`` (the last one's number + 1), arrived at ``us``."""
        if self.count and seq != self.last + 1:
            raise ValueError(f"record {seq} does not follow {self.last} in its shard")
        frame = encode(partition_key, data, explicit_hash_key)
        tail = self.segments[-1] if self.segments else None
        if (
            tail is None
            or len(tail.offsets) >= _Installed.segment_records
            or (tail.offsets and tail.size + len(frame) > SEGMENT_BYTES)
        ):
            tail = self._open_segment(seq)
        fd = self._fd if self._fd is not None else self._reopen(tail)
        written = 0
        while written < len(frame):  # pwrite may write less than asked (it never does on ext4)
            written += os.pwrite(fd, frame[written:], tail.size + written)
        _Installed.dirty.add(self._tail_path or self.path(tail))
        if tail.times and tail.times[-1] > us:
            tail.ordered = False
        tail.offsets.append(tail.size)
        tail.times.append(us)
        tail.size += len(frame)
        self.count += 1

    def _open_segment(self, first: int) -> _Segment:
        self.close()
        directory = self.directory
        if not directory.exists():
            directory.mkdir(parents=True)
            _Installed.dirty.add(directory.parent)
        segment = _Segment(first)
        path = self.path(segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._tail_path = path
        _Installed.dirty.add(directory)
        self.segments.append(segment)
        self.firsts.append(first)
        return segment

    def _reopen(self, tail: _Segment) -> int:
        self._tail_path = self.path(tail)
        self._fd = os.open(self._tail_path, os.O_WRONLY)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tail_path = None

    # reading ----------------------------------------------------------------------------------
    def _read(self, segment: _Segment, start: int, stop: int) -> tuple[bytes, int]:
        """The bytes of records ``start`` to ``stop - 1`` of ``segment``, and where they begin."""
        low = segment.offsets[start]
        high = segment.offsets[stop] if stop < len(segment.offsets) else segment.size
        path = self.path(segment)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the Kinesis records file {path} is missing: the cloud's state was copied "
                f"without its {RECORDS_NAME} folder; import a whole export instead"
            ) from None
        try:
            data = os.pread(fd, high - low, low)
        finally:
            os.close(fd)
        if len(data) != high - low:
            raise OSError(f"the Kinesis records file {path} is shorter than its index says")
        return data, low

    def page(self, start: int, stop: int) -> list[Any]:
        """moto ``Record`` objects for sequence numbers ``start`` to ``stop`` (both kept)."""
        out: list[Any] = []
        seq = start
        while seq <= stop:
            segment, index = self._locate(seq)
            end = min(len(segment.offsets), index + stop - seq + 1)
            data, low = self._read(segment, index, end)
            view = memoryview(data)
            for i in range(index, end):
                fields = decode(view, segment.offsets[i] - low)
                out.append(_record(segment.first + i, segment.times[i], fields))
            seq = segment.first + end
        return out

    def created_at(self, seq: int) -> float:
        segment, index = self._locate(seq)
        return segment.times[index] / 1e6

    def __getitem__(self, seq: int) -> Any:
        return self.page(seq, seq)[0]

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and bool(self.count) and self.first <= seq <= self.last

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1) if self.count else ())

    def __reversed__(self) -> Iterator[int]:
        return reversed(range(self.first, self.last + 1) if self.count else range(0))

    def keys(self) -> Iterator[int]:
        return iter(self)

    def values(self) -> Iterator[Any]:
        """Every record, oldest first, read a page at a time (moto's split and merge)."""
        if not self.count:
            return
        start, last = self.first, self.last
        while start <= last:
            stop = min(last, start + PAGE - 1)
            yield from self.page(start, stop)
            start = stop + 1

    def items(self) -> Iterator[tuple[int, Any]]:
        for record in self.values():
            yield record.sequence_number, record

    def __setitem__(self, seq: int, record: Any) -> None:
        """moto's own ``records[n] = Record(...)``."""
        self.append(
            seq,
            record.partition_key,
            record.data,
            record.explicit_hash_key,
            micros(record.created_at_datetime),
        )

    def __delitem__(self, seq: int) -> None:
        if not self.count or seq != self.first:
            raise KeyError(f"only the oldest record of a shard can go ({seq})")
        self._drop(1)

    # trimming ---------------------------------------------------------------------------------
    def trim_before(self, horizon: float) -> int:
        """Drop the records from the head that arrived before ``horizon`` (seconds, as moto's
        ``created_at``), stopping at the first one that did not; return how many."""
        limit = _threshold(horizon)
        trimmed = 0
        while self.count:
            segment = self.segments[0]
            if segment.times[self.head] >= limit:
                break
            if segment.ordered:
                stop = bisect.bisect_left(segment.times, limit, self.head)
            else:
                stop = self.head
                while stop < len(segment.times) and segment.times[stop] < limit:
                    stop += 1
            trimmed += self._drop(stop - self.head)
        return trimmed

    def _drop(self, n: int) -> int:
        """Drop ``n`` records from the head of the first segment (a whole segment at most)."""
        segment = self.segments[0]
        self.head += n
        self.count -= n
        if self.head >= len(segment.offsets):
            if len(self.segments) == 1:
                self.close()
            _Installed.pending.append(self.path(segment))
            del self.segments[0], self.firsts[0]
            self.head = 0
        return n

    def sequence_number_at(self, at: float) -> int:
        """moto's ``get_sequence_number_at``: 0 when ``at`` is not after the oldest record kept,
        else the newest record that arrived before ``at``."""
        if not self.count:
            return 0
        limit = _threshold(at)
        first = self.segments[0]
        if first.times[self.head] >= limit:
            return 0
        for segment in reversed(self.segments):
            low = self.head if segment is first else 0
            if segment.ordered:
                index = bisect.bisect_left(segment.times, limit, low) - 1
            else:
                index = next(
                    (
                        i
                        for i in range(len(segment.times) - 1, low - 1, -1)
                        if segment.times[i] < limit
                    ),
                    low - 1,
                )
            if index >= low:
                return segment.first + index
        return 0

    def retire(self) -> None:
        """This store's shard went (its stream was deleted, or a split emptied it): its folder
        goes after the next snapshot."""
        self.close()
        _Installed.pending.append(self.directory)


# ---- moto's Shard.records ----------------------------------------------------------------------
def _get_shard_records(shard: Any) -> ShardRecords:
    state = shard.__dict__
    store = state.get("_records")
    if store is None:  # a shard pickled with moto's OrderedDict (a snapshot from before)
        store = ShardRecords.from_records(dict(state.pop("records", None) or {}).values())
        state["_records"] = store
    return store  # type: ignore[no-any-return]


def _set_shard_records(shard: Any, value: Any) -> None:
    """moto's ``Shard.__init__`` and ``split_shard`` assign a fresh ``OrderedDict``."""
    old = shard.__dict__.get("_records")
    new = value if isinstance(value, ShardRecords) else ShardRecords.from_records(value.values())
    shard.__dict__["_records"] = new
    if old is not None and old is not new:
        old.retire()


def _retiring_delete(original: Any) -> Any:
    def delete_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        stream = original(self, *args, **kwargs)
        for shard in stream.shards.values():
            records = shard.records
            if isinstance(records, ShardRecords):
                records.retire()
        return stream

    return delete_stream


def install(root: Path, segment_records: int = SEGMENT_RECORDS) -> None:
    """Keep every Kinesis shard's records under ``root`` (this process, the durable cloud)."""
    from moto.kinesis import models

    use_directory(root, segment_records)
    root.mkdir(parents=True, exist_ok=True)
    if not getattr(models.Shard, "_riskstream_records", False):
        models.Shard.records = property(_get_shard_records, _set_shard_records)  # type: ignore[assignment]
        backend = models.KinesisBackend
        backend.delete_stream = _retiring_delete(backend.delete_stream)  # type: ignore[method-assign]
        models.Shard._riskstream_records = True  # type: ignore[attr-defined]


# ---- the durable store's hooks -----------------------------------------------------------------
def live_stores() -> list[ShardRecords]:
    """Every shard's store in the Kinesis backends now in memory."""
    from moto.kinesis.models import kinesis_backends

    stores = []
    for regions in list(kinesis_backends.values()):
        for backend in list(regions.values()):
            for stream in list(backend.streams.values()):
                for shard in stream.shards.values():
                    records = shard.records
                    if isinstance(records, ShardRecords):
                        stores.append(records)
    return stores


def reconcile(truncate: bool) -> int:
    """Make the folder hold exactly the files the stores in memory name; return how many went.

    After a snapshot was loaded (``truncate``): cut each segment back to the size the snapshot
    recorded (the log replays what followed) and check none is missing or short. After a
    foreground snapshot: delete what it does not name (trimmed segments, deleted streams).
    """
    root = _Installed.root
    if root is None or not root.exists():
        return 0
    wanted: dict[str, dict[str, int]] = {}
    for store in live_stores():
        wanted[store.id] = {s.name: s.size for s in store.segments}
        if not truncate:
            continue
        for segment in store.segments:
            path = store.path(segment)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise RecordsError(
                    f"cannot restore the local cloud: the Kinesis records file {path} is missing "
                    f"(the state was copied without its {RECORDS_NAME} folder?). Nothing was "
                    "deleted; import a whole export, or start empty with `riskstream cloud up "
                    "--start-empty`"
                ) from None
            if size < segment.size:
                raise RecordsError(
                    f"cannot restore the local cloud: the Kinesis records file {path} holds "
                    f"{size} bytes, its snapshot names {segment.size}. Nothing was deleted; "
                    "start empty with `riskstream cloud up --start-empty`"
                )
            if size > segment.size:
                os.truncate(path, segment.size)
    removed = 0
    for entry in root.iterdir():
        names = wanted.get(entry.name)
        if names is None:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
            continue
        for path in entry.iterdir():
            if path.name not in names:
                path.unlink(missing_ok=True)
                removed += 1
    _Installed.pending = []
    _Installed.dirty = {p for p in _Installed.dirty if p.exists()}
    if removed:
        logger.info("deleted %d Kinesis records files and folders no shard needs", removed)
    return removed


def sync() -> None:
    """fsync every segment and folder written since the last sync (before a snapshot)."""
    from infra.s3_bodies import fsync_dir

    dirty, _Installed.dirty = _Installed.dirty, set()
    for path in sorted(dirty, key=lambda p: len(p.parts), reverse=True):  # files, then folders
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir():
                fsync_dir(path)
            else:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def detach() -> tuple[list[Path], set[Path]]:
    """In the parent right after a background snapshot's fork: what that snapshot will settle
    (the files it no longer names, the files it fsyncs); the parent starts afresh."""
    taken = (_Installed.pending, _Installed.dirty)
    _Installed.pending, _Installed.dirty = [], set()
    return taken


def settle(taken: tuple[list[Path], set[Path]], ok: bool) -> None:
    """A background snapshot ended: on success delete what it no longer names; on failure keep
    all of it for the next snapshot."""
    pending, dirty = taken
    if not ok:
        _Installed.pending = pending + _Installed.pending
        _Installed.dirty |= dirty
        return
    for path in pending:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
