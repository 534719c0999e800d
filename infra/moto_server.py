"""Launch moto's server (used by `riskstream cloud up`): durable state, and a Kinesis fix.

With ``--state DIR`` the server keeps its state in DIR (see infra/durable.py): it restores the
snapshot and log on start, logs every acknowledged write, and snapshots on a clean stop. Without
it, the server is moto as it ships, in memory.

moto 5 answers "last sequence number of a shard" by copying the shard's whole key list, on every
PutRecords entry, so a put costs O(records already in the shard) and producing 150,000 events
took about ten times longer than it should (350 s against 35 s, measured here). A shard keeps its
records in an OrderedDict keyed by sequence number, so the first and last keys are O(1) to read.
Likewise its GetRecords walked a shard from its oldest record to find the page after an
iterator, so every poll at the tip of a stream cost O(records retained) (a third of the server's
CPU while the live scorer followed a stream of 40,000 records); the page is a range
of consecutive sequence numbers, read directly. DynamoDB's item size check summed the whole item
again for each attribute it added (see :func:`_item_init`), and again when a snapshot was loaded
(see :func:`_reduce_limited_size_dict`). To route each request, moto's dispatcher asked whether
the Host header names one of its services by listing its own package folder (a ``listdir`` and
about 150 ``isdir`` calls per request): 16% of the server's busy CPU in the pipeline e2e test.
The folder cannot change while the server runs, so it is listed once (:func:`_moto_modules`).
The behaviour is otherwise unchanged: this is still moto speaking the AWS wire protocol.

Kinesis retention as on AWS: moto keeps a stream's ``RetentionPeriodHours`` (24 by default,
``IncreaseStreamRetentionPeriod``/``Decrease...`` honoured) but never trims, so every record ever
sent stayed in memory and in the snapshot. Here records older than the retention period are
dropped from the head of their shard whenever the stream is written or read (AWS trims in the
background; nobody can tell the difference). Sequence numbers never restart: a shard remembers the
last one it trimmed. An iterator at an expired sequence number starts at the oldest record kept
(TRIM_HORIZON), as on AWS; infra/shards.py tells a consumer whose checkpoint fell behind.

For tests only, ``POST /_riskstream/kinesis-clock`` with ``{"offset_hours": H}`` moves the Kinesis
clock (arrival times and the trim horizon) H hours ahead, so a test can see a day pass without
waiting for it. The offset is not part of the durable state.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import logging
import signal
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto import backends as moto_backends
from moto.core import utils as core_utils
from moto.dynamodb.models import dynamo_type
from moto.kinesis import models

from infra.durable import item_attributes
from infra.kinesis_records import SEGMENT_RECORDS, ShardRecords, micros

logger = logging.getLogger(__name__)

CLOCK_PATH = "/_riskstream/kinesis-clock"


def _first_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    return next(iter(records)) if records else 0


def _last_key(self: models.Shard) -> int:
    records: OrderedDict[int, object] = self.records  # type: ignore[assignment]
    # once every record has expired, the next one still follows the last one ever written
    return next(reversed(records)) if records else int(getattr(self, "trimmed_through", 0))


def _put_record(self: models.Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
    """moto's, numbering on from the last record ever written even when all have expired."""
    sequence_number = _last_key(self) + 1
    records = self.records
    if isinstance(records, ShardRecords):  # the durable cloud: on disk, no Record object kept
        records.append(
            sequence_number, partition_key, data, explicit_hash_key, micros(models.utcnow())
        )
    else:
        records[sequence_number] = models.Record(
            partition_key, data, sequence_number, explicit_hash_key
        )
    return str(sequence_number)


_scan_records = models.Shard.get_records  # moto's: a walk over every record of the shard


def _get_records(self: models.Shard, last_sequence_id: str, limit: int | None) -> Any:
    """moto's answer (records after ``last_sequence_id``, at most ``limit``, the last sequence
    number returned and the milliseconds behind the newest record) without walking the shard
    from its oldest record: sequence numbers are consecutive (:func:`_put_record`), so the page
    is a range of keys. Any other shape falls back to moto's walk."""
    records: OrderedDict[int, Any] = self.records  # type: ignore[assignment]
    last = int(last_sequence_id)
    if not records or limit == 0:
        return [], last, 0
    first, newest = next(iter(records)), next(reversed(records))
    if newest - first + 1 != len(records):
        return _scan_records(self, last_sequence_id, limit)
    start = max(last + 1, first)
    stop = newest if limit is None else min(newest, start + limit - 1)
    if start > stop:
        return [], last, 0
    if isinstance(records, ShardRecords):  # one read per segment, not per record
        page = records.page(start, stop)
        behind = records.created_at(newest) - page[-1].created_at
        return page, stop, int(behind * 1000)
    page = [records[n] for n in range(start, stop + 1)]
    behind = records[newest].created_at - page[-1].created_at
    return page, stop, int(behind * 1000)


_scan_for_time = models.Shard.get_sequence_number_at  # moto's: materialises every record


def _sequence_number_at(self: models.Shard, at_timestamp: float) -> int:
    """moto's AT_TIMESTAMP answer; on disk, a search of the arrival times, not of Records."""
    records = self.records
    if isinstance(records, ShardRecords):
        return records.sequence_number_at(at_timestamp)
    return _scan_for_time(self, at_timestamp)


ITEM_SIZE_LIMIT = 405_000  # moto's (DynamoDB's 400 KB, as measured by moto's authors)


def _item_init(
    self: dynamo_type.Item,
    hash_key: dynamo_type.DynamoType,
    range_key: dynamo_type.DynamoType | None,
    attrs: dict[str, Any],
) -> None:
    """moto's ``Item.__init__`` with its size check done once: moto inserts the attributes one
    by one into a dict that sums the sizes of all it holds on every insert (quadratic in the
    attributes, each string encoded again every time: about 1 ms per 6 KB item, 90% of a
    BatchWriteItem). Sizes are never negative, so "some prefix is over the limit" is "the whole
    is": the same items are refused, with the same error."""
    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: dynamo_type.DynamoType(value) for key, value in attrs.items()}
    size = sum(dynamo_type.bytesize(key) + value.size() for key, value in values.items())
    if size > ITEM_SIZE_LIMIT:
        raise dynamo_type.ItemSizeTooLarge
    self.attrs = item_attributes(values)  # later writes to it keep moto's own check


def _reduce_limited_size_dict(self: dynamo_type.LimitedSizeDict) -> tuple[Any, ...]:
    """Pickle rebuilt a dict subclass key by key through its ``__setitem__``, which is moto's
    quadratic size check: loading the snapshot of a 35,771-item online table took 4.8 s, 85% of
    it in that check. The attributes now come back in one ``dict.update``."""
    # item_attributes lives in a module that is never __main__: a snapshot names the function
    # that rebuilds, and this module is __main__ in the server
    return (item_attributes, (dict(self),))


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def untrack_models() -> None:
    """Stop moto's ``BaseModel`` from keeping every model object it ever made.

    moto appends each new instance (a Kinesis ``Record``, an S3 ``FakeKey``, a DynamoDB ``Item``,
    a CloudWatch datum) to a class-level list, only for its dashboard's ``/moto-api/data.json``,
    and never lets go of it: a deleted key, an overwritten item, a trimmed record stayed in memory
    for the life of the process. The durable cloud must not grow with what it no longer holds, so
    it does without that dashboard list (it lists nothing there).
    """
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[assignment, method-assign]
    reset_model_data()  # and lets go of those made so far


class KinesisClock:
    """Kinesis's "now": moto's clock (pinned while a durable write applies) plus a test offset."""

    offset_hours = 0.0


def kinesis_now() -> datetime.datetime:
    return core_utils.utcnow() + datetime.timedelta(hours=KinesisClock.offset_hours)


def trim_shard(shard: models.Shard, retention_hours: float, now: datetime.datetime) -> int:
    """Drop the shard's records that arrived more than ``retention_hours`` before ``now``;
    return how many. Records are in arrival order, so only the head is looked at."""
    horizon = core_utils.unix_time(now) - retention_hours * 3600
    records: OrderedDict[int, Any] = shard.records  # type: ignore[assignment]
    if isinstance(records, ShardRecords):
        before = records.first if records else 0
        trimmed = records.trim_before(horizon)
        if trimmed:
            shard.trimmed_through = before + trimmed - 1  # type: ignore[attr-defined]
        return trimmed
    trimmed = 0
    while records:
        first = next(iter(records))
        if records[first].created_at >= horizon:
            break
        del records[first]
        shard.trimmed_through = first  # type: ignore[attr-defined]
        trimmed += 1
    return trimmed


def trim_stream(stream: models.Stream) -> int:
    """Apply the stream's retention period to each of its shards."""
    now = kinesis_now()
    return sum(trim_shard(s, stream.retention_period_hours, now) for s in stream.shards.values())


def _trimming_put(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_record(self: models.Stream, *args: Any, **kwargs: Any) -> Any:
        trim_stream(self)
        return original(self, *args, **kwargs)

    return put_record


def _trimming_read(
    original: Callable[..., Any], stream_of: Callable[..., str]
) -> Callable[..., Any]:
    def read(self: models.KinesisBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            name = stream_of(*args, **kwargs)
            arn = args[0] if args else kwargs.get("stream_arn")
            stream = self.describe_stream(stream_arn=arn, stream_name=name)
        except Exception:  # an unknown stream or a bad iterator: moto's own call says so
            return original(self, *args, **kwargs)
        trim_stream(stream)
        return original(self, *args, **kwargs)

    return read


def _iterator_stream(*args: Any, **kwargs: Any) -> str:
    """GetRecords(stream_arn, shard_iterator, limit): the stream its iterator names."""
    return str(models.decompose_shard_iterator(args[1])[0])


def _named_stream(*args: Any, **kwargs: Any) -> str:
    """GetShardIterator(stream_arn, stream_name, ...): the stream's name (may be None)."""
    return str(args[1]) if args[1] else ""


_list_moto_modules = moto_backends.list_of_moto_modules  # moto's: lists its folder on each call


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    """moto's service folders, listed once (the dispatcher asks on every request)."""
    return tuple(_list_moto_modules())


def patch_moto() -> None:
    moto_backends.list_of_moto_modules = _moto_modules  # type: ignore[assignment]
    models.Shard.get_min_sequence_number = _first_key  # type: ignore[method-assign]
    models.Shard.get_max_sequence_number = _last_key  # type: ignore[method-assign]
    if not getattr(models.Stream, "_riskstream_retention", False):
        models.utcnow = kinesis_now  # records' arrival times on the Kinesis clock
        models.Shard.put_record = _put_record  # type: ignore[method-assign]
        models.Shard.get_records = _get_records  # type: ignore[method-assign]
        models.Shard.get_sequence_number_at = _sequence_number_at  # type: ignore[method-assign]
        dynamo_type.Item.__init__ = _item_init  # type: ignore[method-assign]
        dynamo_type.LimitedSizeDict.__reduce__ = _reduce_limited_size_dict  # type: ignore[method-assign, assignment]
        models.Stream.put_record = _trimming_put(models.Stream.put_record)  # type: ignore[method-assign]
        backend = models.KinesisBackend
        backend.get_records = _trimming_read(backend.get_records, _iterator_stream)  # type: ignore[method-assign]
        backend.get_shard_iterator = _trimming_read(backend.get_shard_iterator, _named_stream)  # type: ignore[method-assign]
        models.Stream._riskstream_retention = True  # type: ignore[attr-defined]

    from infra import durable
    from infra.moto_sfn import patch_queues, patch_stepfunctions

    patch_queues()
    # Step Functions executes state machines (infra/moto_sfn.py). Its parser is more than a second
    # of imports (moto's EC2 and Batch with it), half of a server's start, so it is patched in
    # when the server first needs Step Functions: a request for it, or a snapshot that holds it.
    _on_first_use("stepfunctions", patch_stepfunctions)
    durable.before_unpickling("moto.stepfunctions", patch_stepfunctions)


def _on_first_use(service: str, prepare: Callable[[], None]) -> None:
    """Run ``prepare`` whenever moto looks up ``service``'s backends, before it gets them (the
    dispatcher, on the service's first request, and the durable store, when it installs state,
    both ask ``moto.backends.get_backend``). ``prepare`` must be idempotent."""
    get_backend = moto_backends.get_backend
    if getattr(get_backend, "_riskstream_prepares", None) == service:
        return

    @functools.wraps(get_backend)
    def prepared_first(name: str) -> Any:
        if name == service:
            prepare()
        return get_backend(name)  # type: ignore[call-overload]

    prepared_first._riskstream_prepares = service  # type: ignore[attr-defined]
    moto_backends.get_backend = prepared_first  # type: ignore[assignment]


class ClockControl:
    """WSGI middleware answering :data:`CLOCK_PATH` (tests move the Kinesis clock)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # shutdown() and friends of the wrapped app
        return getattr(self.app, name)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CLOCK_PATH:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            KinesisClock.offset_hours = float(body.get("offset_hours", 0.0))
            logger.warning("Kinesis clock moved %+.1f h (a test's)", KinesisClock.offset_hours)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"offset_hours": KinesisClock.offset_hours}).encode()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="infra.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, default=None, help="keep the state in this dir")
    parser.add_argument("--fsync", action="store_true", help="fsync each logged write")
    parser.add_argument(
        "--replay-budget",
        type=float,
        default=2.0,
        help="snapshot once the log holds this many seconds of applied writes",
    )
    parser.add_argument(
        "--segment-records",
        type=int,
        default=SEGMENT_RECORDS,
        help="Kinesis records per segment file of a shard (tests make it small)",
    )
    return parser.parse_args(argv)


def build_app(
    state: Path | None,
    fsync: bool = False,
    replay_budget: float = 2.0,
    segment_records: int = SEGMENT_RECORDS,
) -> Any:
    """moto's WSGI app; with ``state``, restored from it and wrapped to log every write."""
    import os

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    os.environ.setdefault("MOTO_PORT", "4566")
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    if state is None:
        return ClockControl(app)
    from infra import kinesis_records
    from infra.durable import DurableApp, DurableStore, install_clock, install_upload_ids
    from infra.s3_bodies import BODIES_NAME, install

    install_clock()  # before any service module is imported, so each binds the pinned clock
    install_upload_ids()  # a replayed CreateMultipartUpload names the upload as it did
    untrack_models()  # moto's dashboard list of every object ever made would grow for ever
    install(state / BODIES_NAME, fsync_renames=fsync)  # S3 bodies on disk, not in memory
    kinesis_records.install(state / kinesis_records.RECORDS_NAME, segment_records)  # and records
    from infra.moto_sfn import replaying

    store = DurableStore(state, fsync=fsync, replay_budget=replay_budget)
    with replaying():  # a replayed StartExecution is recorded, never run again
        store.restore(app)
    if store.due() and not store.snapshot_in_background():
        store.snapshot()  # a long replay the next start must not repeat; in the background
        # when it can, so the cloud answers while the snapshot is written
    return ClockControl(DurableApp(app, store))


def main(argv: list[str]) -> None:
    patch_moto()
    args = parse_args(argv)
    import os

    os.environ["MOTO_PORT"] = str(args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from infra.durable import StateError

    try:
        app = build_app(args.state, args.fsync, args.replay_budget, args.segment_records)
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the launcher's last word, in its log
        raise SystemExit(2) from None

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    try:
        run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    finally:
        shutdown = getattr(app, "shutdown", None)
        if shutdown is not None:
            shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
