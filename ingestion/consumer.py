"""Firehose-like landing: Kinesis -> gzip JSON lines in S3, checkpointed in DynamoDB. I/O module.

- Every shard is read by its own thread (children only after their parents are finished, so
  resharded streams keep per-account order); records are judged by :mod:`ingestion.landing`.
- A shard's buffer is flushed when it holds ``buffer_records`` records or ``buffer_bytes`` bytes,
  when it is ``buffer_seconds`` old, when the shard is drained (``once``) or closed.
- A flush is three steps: record the intent (last sequence number of the flush) in the shard's
  checkpoint item, write the objects (raw and quarantine by UTC arrival hour; names from
  shard and sequence range), then move the checkpoint to that sequence number. A consumer that
  restarts after a crash replays exactly the same flush, so it rewrites the same objects: nothing
  is lost and nothing is duplicated.
- Leases: each shard's item has an ``owner`` and ``lease_expires_at``; every write is conditional on
  still owning it, so two consumers cannot corrupt each other's checkpoints. A shard leased by a
  live other consumer is a clear :class:`LeaseHeldError`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.kinesis import list_shards
from ingestion.landing import (
    FlushBuffer,
    after_page,
    flush_objects,
    judge,
    replay_flush_due,
    size_flush_due,
)

logger = logging.getLogger(__name__)

SHARD_END = "SHARD_END"
# In-process duplicate detection is a courtesy (the ETL de-duplicates by event_id); keep it bounded.
MAX_SEEN_IDS = 2_000_000


class LeaseHeldError(RuntimeError):
    """Another live consumer holds a shard's lease."""


class LeaseLostError(RuntimeError):
    """This consumer's lease was taken over (it expired); stop without writing a checkpoint."""


class _Aborted(Exception):
    """A shard stopped because another shard's worker failed (that failure is the one raised)."""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LandingConfig:
    """Buffering and leasing knobs (Firehose buffers by size and time, too)."""

    buffer_records: int = 20_000
    buffer_bytes: int = 4 * 1024 * 1024
    buffer_seconds: float = 2.0
    get_limit: int = 10_000
    idle_sleep: float = 0.2
    lease_seconds: float = 30.0
    lag_report_seconds: float = 10.0
    relist_seconds: float = 15.0

    def __post_init__(self) -> None:
        if self.buffer_records < 1 or self.buffer_bytes < 1 or self.buffer_seconds <= 0:
            raise ValueError(f"buffer sizes and time must be positive, got {self}")
        if not 1 <= self.get_limit <= 10_000:
            raise ValueError(f"get_limit={self.get_limit} must be between 1 and 10,000")
        if self.lease_seconds < 1:
            raise ValueError(f"lease_seconds={self.lease_seconds} must be at least 1")


@dataclass(frozen=True)
class ShardState:
    checkpoint: str | None
    pending_last: str | None
    finished: bool


class CheckpointStore:
    """Per-shard checkpoint and lease items in the DynamoDB table (hash key ``lease_key``)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        stream_name: str,
        owner: str,
        lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.stream_name = stream_name
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock

    def key(self, shard_id: str) -> dict[str, Any]:
        return {"lease_key": {"S": f"{self.stream_name}/{shard_id}"}}

    def read(self, shard_id: str) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=self.key(shard_id), ConsistentRead=True
        ).get("Item", {})
        return {k: next(iter(v.values())) for k, v in item.items()}

    def acquire(self, shard_id: str) -> ShardState:
        now = self.clock()
        try:
            item = self.dynamodb.update_item(
                TableName=self.table,
                Key=self.key(shard_id),
                UpdateExpression="SET #o = :me, lease_expires_at = :exp, acquired_at = :now",
                ConditionExpression=(
                    "attribute_not_exists(#o) OR #o = :me OR lease_expires_at < :now"
                ),
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":me": {"S": self.owner},
                    ":exp": {"N": repr(now + self.lease_seconds)},
                    ":now": {"N": repr(now)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            held = self.read(shard_id)
            expires = float(held.get("lease_expires_at", 0))
            raise LeaseHeldError(
                f"shard {shard_id} of stream {self.stream_name} is leased by consumer "
                f"{held.get('owner')!r} until "
                f"{datetime.fromtimestamp(expires, UTC).isoformat(timespec='seconds')} "
                f"(in {max(0.0, expires - now):.0f}s): another consumer is running. Stop it, or "
                "wait for its lease to expire if it died."
            ) from None
        values = {k: next(iter(v.values())) for k, v in item.items()}
        checkpoint = values.get("checkpoint")
        return ShardState(
            checkpoint=None if checkpoint in (None, SHARD_END) else checkpoint,
            pending_last=values.get("pending_last"),
            finished=checkpoint == SHARD_END,
        )

    def _owned_update(
        self, shard_id: str, expression: str, values: dict[str, Any], extend: bool = True
    ) -> None:
        now = self.clock()
        if extend:
            values = {":exp": {"N": repr(now + self.lease_seconds)}, **values}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self.key(shard_id),
                UpdateExpression=expression,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}, **values},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            held = self.read(shard_id)
            raise LeaseLostError(
                f"lost the lease on shard {shard_id} to {held.get('owner')!r}; stopping this "
                "shard without moving its checkpoint"
            ) from None

    def begin(self, shard_id: str, last_seq: str) -> None:
        """Record the intent to flush up to ``last_seq`` (so a restart replays the same flush)."""
        self._owned_update(
            shard_id,
            "SET pending_last = :p, lease_expires_at = :exp",
            {":p": {"S": last_seq}},
        )

    def commit(self, shard_id: str, last_seq: str) -> None:
        """Move the checkpoint, after the flush's objects are written."""
        self._owned_update(
            shard_id,
            "SET checkpoint = :c, lease_expires_at = :exp, updated_at = :t REMOVE pending_last",
            {":c": {"S": last_seq}, ":t": {"N": repr(self.clock())}},
        )

    def renew(self, shard_id: str) -> None:
        self._owned_update(shard_id, "SET lease_expires_at = :exp", {})

    def release(self, shard_id: str) -> None:
        try:
            self._owned_update(
                shard_id,
                "SET lease_expires_at = :zero REMOVE #o",
                {":zero": {"N": "0"}},
                extend=False,
            )
        except (LeaseLostError, ClientError) as exc:
            logger.warning("could not release lease on %s: %s", shard_id, exc)


@dataclass
class LandingReport:
    records: int = 0
    landed: int = 0
    quarantined: int = 0
    objects: int = 0
    flushes: int = 0
    shards: int = 0
    seconds: float = 0.0
    lag_ms: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "landed": self.landed,
            "quarantined": self.quarantined,
            "objects": self.objects,
            "flushes": self.flushes,
            "shards": self.shards,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records / self.seconds, 1) if self.seconds else 0.0,
            "lag_ms": dict(self.lag_ms),
            "interrupted": self.interrupted,
            "quarantine_reasons": dict(self.reasons),
        }


class Consumer:
    """Land every shard of one stream into the raw bucket (see the module docstring)."""

    def __init__(
        self,
        kinesis: Any,
        s3: Any,
        dynamodb: Any,
        *,
        stream_name: str,
        raw_bucket: str,
        quarantine_bucket: str,
        checkpoint_table: str,
        owner: str | None = None,
        config: LandingConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_flush: Callable[[str, FlushBuffer], None] | None = None,
    ) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        self.stream_name = stream_name
        self.buckets = {"raw": raw_bucket, "quarantine": quarantine_bucket}
        self.config = config or LandingConfig()
        self.owner = owner or default_owner()
        self.store = CheckpointStore(
            dynamodb, checkpoint_table, stream_name, self.owner, self.config.lease_seconds
        )
        self.clock = clock
        self.on_flush = on_flush
        self._stop = threading.Event()  # graceful: flush, checkpoint, release
        self._abort = threading.Event()  # another worker failed: leave without writing
        self._failure: BaseException | None = None
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-put")
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._report = LandingReport()

    def stop(self) -> None:
        """Ask every shard to flush, checkpoint and return (safe from another thread)."""
        self._stop.set()

    # ---- the run ----------------------------------------------------------------------------
    def run(self, follow: bool = False, max_seconds: float | None = None) -> LandingReport:
        """``follow=False`` drains what is there and returns; ``True`` keeps reading until
        :meth:`stop`, Ctrl-C or ``max_seconds``."""
        report = self._report = LandingReport()
        self._stop.clear()
        self._abort.clear()
        self._failure = None
        started = time.monotonic()
        deadline = started + max_seconds if max_seconds else None
        done: set[str] = set()
        running: dict[Future[None], str] = {}
        shards = self._list_shards()
        last_list = time.monotonic()
        last_lag = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(4, len(shards) + 2), thread_name_prefix="shard")
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    self._stop.set()
                if follow and time.monotonic() - last_list > self.config.relist_seconds:
                    shards, last_list = self._list_shards(), time.monotonic()
                active = set(running.values())
                for shard in _ready(shards, done, active):
                    running[pool.submit(self._shard, shard, follow)] = shard["ShardId"]
                if not running:
                    break
                finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in finished:
                    shard_id = running.pop(future)
                    error = future.exception()
                    if isinstance(error, LeaseHeldError):
                        # Another consumer owns this shard: let ours finish cleanly (flush,
                        # checkpoint, release their leases), then say so.
                        self._stop.set()
                        for other in list(running):
                            other.exception()
                        raise error
                    if error is not None:
                        raise self._failure or error
                    done.add(shard_id)
                if time.monotonic() - last_lag > self.config.lag_report_seconds:
                    last_lag = time.monotonic()
                    logger.info(
                        "lag (ms behind latest) %s; landed %d, quarantined %d",
                        report.lag_ms,
                        report.landed,
                        report.quarantined,
                    )
        except KeyboardInterrupt:
            report.interrupted = True
            self._stop.set()
            logger.warning("interrupted: flushing buffers and checkpointing before exit")
            for future in list(running):
                future.result()
        except BaseException:
            self._abort.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            report.seconds = time.monotonic() - started
        report.shards = len(done)
        logger.info("landing summary: %s", report.summary())
        return report

    def _list_shards(self) -> list[dict[str, Any]]:
        return list_shards(self.kinesis, self.stream_name)

    def _shard(self, shard: dict[str, Any], follow: bool) -> None:
        shard_id = shard["ShardId"]
        try:
            ShardReader(self, shard_id, _ending(shard)).run(follow)
        except (_Aborted, LeaseHeldError):
            raise
        except BaseException as exc:
            with self._lock:
                if self._failure is None:
                    self._failure = exc
            self._abort.set()
            raise

    # ---- shared accounting ------------------------------------------------------------------
    def _account(self, shard_id: str, buffer: FlushBuffer, objects: int) -> None:
        with self._lock:
            r = self._report
            r.records += buffer.records
            r.landed += buffer.landed
            r.quarantined += buffer.quarantined
            r.objects += objects
            r.flushes += 1
            for entries in buffer.bad.values():
                for entry in entries:
                    r.reasons[entry["reason"]] = r.reasons.get(entry["reason"], 0) + 1


class ShardReader:
    """Reads one shard from its checkpoint, flushing as the module docstring describes."""

    def __init__(self, consumer: Consumer, shard_id: str, ending: str | None = None) -> None:
        self.c = consumer
        self.shard_id = shard_id
        self.ending = ending  # EndingSequenceNumber once the shard is closed (split/merge)
        self.last_check = time.monotonic()
        self.cfg = consumer.config
        self.buffer = FlushBuffer()
        self.last_renew = time.monotonic()

    def run(self, follow: bool) -> None:
        c, shard_id = self.c, self.shard_id
        state = c.store.acquire(shard_id)
        if state.finished:
            logger.debug("shard %s already finished", shard_id)
            return
        pending = state.pending_last
        if pending:
            logger.info("shard %s: replaying an unfinished flush up to %s", shard_id, pending)
        iterator: str | None = self._iterator(state.checkpoint)
        # Read ahead: while one page is judged and written, the next GetRecords is in flight.
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"get-{shard_id}")
        ahead: Future[dict[str, Any]] | None = None
        try:
            while not c._abort.is_set():
                if ahead is None:
                    ahead = fetcher.submit(self._get, iterator)
                response = ahead.result()
                ahead = None
                records = response.get("Records", [])
                iterator = response.get("NextShardIterator")
                if records and iterator is not None:
                    ahead = fetcher.submit(self._get, iterator)
                lag = response.get("MillisBehindLatest")
                if lag is not None:
                    with c._lock:
                        c._report.lag_ms[shard_id] = int(lag)
                for record in records:
                    seq = record["SequenceNumber"]
                    data = record["Data"]
                    if len(c._seen) > MAX_SEEN_IDS:
                        logger.info("forgetting %d event ids seen (bounded memory)", len(c._seen))
                        c._seen.clear()
                    verdict = judge(
                        data, shard_id, seq, record["ApproximateArrivalTimestamp"], c._seen
                    )
                    self.buffer.add(verdict, seq, len(data), c.clock())
                    if pending is not None:
                        if replay_flush_due(seq, pending):
                            self._flush()
                            pending = None
                    elif size_flush_due(
                        self.buffer, self.cfg.buffer_records, self.cfg.buffer_bytes
                    ):
                        self._flush()
                if c._abort.is_set():
                    return
                caught_up = not records and not lag
                if caught_up and self.ending is None and follow:
                    self._check_closed()
                # A closed shard is done when read to its end (no next iterator; some emulators
                # keep returning iterators, so caught up on a closed shard counts too).
                if iterator is None or (caught_up and self.ending is not None):
                    self._flush()
                    c.store.commit(shard_id, SHARD_END)
                    logger.info("shard %s is closed and fully landed", shard_id)
                    break
                stopping = c._stop.is_set()
                end = after_page(
                    self.buffer,
                    len(records),
                    self.cfg.get_limit,
                    c.clock(),
                    self.cfg.buffer_seconds,
                    caught_up=caught_up,
                    follow=follow,
                    stopping=stopping,
                    replaying=pending is not None,
                )
                if end.flush and pending is not None:
                    logger.warning(
                        "shard %s: records up to %s were not found again (trimmed?); "
                        "flushing what was read",
                        shard_id,
                        pending,
                    )
                if end.flush:
                    self._flush()
                if end.stop:
                    break
                if caught_up:
                    time.sleep(self.cfg.idle_sleep)
                if time.monotonic() - self.last_renew > self.cfg.lease_seconds / 3:
                    c.store.renew(shard_id)
                    self.last_renew = time.monotonic()
        except (Exception, KeyboardInterrupt):
            c._abort.set()
            raise
        finally:
            fetcher.shutdown(wait=True, cancel_futures=True)
        if not c._abort.is_set():
            c.store.release(shard_id)

    def _get(self, iterator: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self.c.kinesis.get_records(
            ShardIterator=iterator, Limit=self.cfg.get_limit
        )
        return result

    def _check_closed(self) -> None:
        """In --follow, notice (every relist interval) that this shard was closed by a reshard."""
        if time.monotonic() - self.last_check < self.cfg.relist_seconds:
            return
        self.last_check = time.monotonic()
        for shard in self.c._list_shards():
            if shard["ShardId"] == self.shard_id:
                self.ending = _ending(shard)

    def _iterator(self, checkpoint: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.c.stream_name, "ShardId": self.shard_id}
        if checkpoint:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=checkpoint
            )
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self.c.kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def _flush(self) -> None:
        buffer = self.buffer
        if not buffer.records or buffer.last_seq is None:
            return
        c = self.c
        objects = flush_objects(buffer, self.shard_id)
        c.store.begin(self.shard_id, buffer.last_seq)

        def put(item: tuple[str, str, bytes]) -> None:
            role, key, body = item
            if c._abort.is_set():
                raise _Aborted(f"stopping shard {self.shard_id}: another worker failed")
            c.s3.put_object(
                Bucket=c.buckets[role],
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
            )

        # A flush that spans an hour boundary writes one object per hour: write them concurrently.
        if len(objects) > 1:
            for future in [c._writers.submit(put, item) for item in objects]:
                future.result()
        elif objects:
            put(objects[0])
        c.store.commit(self.shard_id, buffer.last_seq)
        self.last_renew = time.monotonic()
        c._account(self.shard_id, buffer, len(objects))
        if c.on_flush is not None:
            c.on_flush(self.shard_id, buffer)
        logger.debug(
            "shard %s: flushed %s..%s (%d records, %d objects)",
            self.shard_id,
            buffer.first_seq,
            buffer.last_seq,
            buffer.records,
            len(objects),
        )
        self.buffer = FlushBuffer()


def _ready(shards: list[dict[str, Any]], done: set[str], active: set[str]) -> list[dict[str, Any]]:
    """Shards to start now: not done, not running, and every parent present is done."""
    known = {s["ShardId"] for s in shards}
    out = []
    for shard in shards:
        sid = shard["ShardId"]
        if sid in done or sid in active:
            continue
        parents = [shard.get("ParentShardId"), shard.get("AdjacentParentShardId")]
        if all(p is None or p not in known or p in done for p in parents):
            out.append(shard)
    return out


def _ending(shard: dict[str, Any]) -> str | None:
    ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
    return str(ending) if ending is not None else None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
