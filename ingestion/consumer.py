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
- Leases, checkpoints, retries and cursors come from :mod:`infra.shards` (the landing
  application's rows). A shard leased by a live other consumer is a clear
  :class:`LeaseHeldError`; a clean stop (end of a drain, :meth:`Consumer.stop`, Ctrl-C/SIGTERM)
  releases every lease so a successor starts at once.
- The cloud going away (connection errors, 5xx, throttling) is retried with backoff on every
  call; a ``follow`` run waits for it indefinitely and resumes where it was, a drain gives up
  after ``retry.max_outage_seconds`` with :class:`CloudUnreachableError`.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from infra.shards import (
    SHARD_END,
    Aborted,
    CheckpointStore,
    CloudUnreachableError,
    LeaseHeldError,
    LeaseLostError,
    ReaderConfig,
    RetryPolicy,
    ShardCursor,
    ShardState,
    every_shard,
    open_application,
    ready_shards,
    shard_ending,
)
from ingestion.landing import (
    FlushBuffer,
    after_page,
    flush_objects,
    judge,
    replay_flush_due,
    size_flush_due,
)
from riskstream import names
from riskstream.checks import require_positive

__all__ = [
    "CheckpointStore",
    "CloudUnreachableError",
    "Consumer",
    "LandingConfig",
    "LandingReport",
    "LeaseHeldError",
    "LeaseLostError",
    "RetryPolicy",
    "ShardState",
]

logger = logging.getLogger(__name__)

# In-process duplicate detection is a courtesy (the ETL de-duplicates by event_id); keep it bounded.
MAX_SEEN_IDS = 2_000_000
_Aborted = Aborted  # a shard stopped because another shard's worker failed (that one is raised)
_ready = ready_shards
_ending = shard_ending


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LandingConfig(ReaderConfig):
    """Buffering knobs (Firehose buffers by size and time, too) beside the shard reader's.

    ``retry``: backoff on connection errors, 5xx and throttling. Its ``max_outage_seconds``
    bounds a drain (``--once``); a ``--follow`` run never gives up because the cloud went away.
    """

    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_outage_seconds=300.0))
    buffer_records: int = 20_000
    buffer_bytes: int = 4 * 1024 * 1024
    buffer_seconds: float = 2.0
    lag_report_seconds: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            buffer_records=self.buffer_records,
            buffer_bytes=self.buffer_bytes,
            buffer_seconds=self.buffer_seconds,
        )


@dataclass
class LandingReport:
    """What one run landed: records read, landed and quarantined (by reason), the objects
    and flushes written, and the cloud's retries and outages on the way."""

    records: int = 0
    landed: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    flushes: int = 0
    shards: int = 0
    seconds: float = 0.0
    lag_ms: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    retries: int = 0  # cloud calls retried (connection errors, 5xx, throttling)
    throttled: int = 0  # of which throttling
    outages: int = 0  # times the cloud became unreachable, and for how long in all
    outage_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The report as plain data (what the CLI prints and the task returns), rounded."""
        out = asdict(self)
        out["quarantine_reasons"] = out.pop("reasons")
        rate = round(self.records / self.seconds, 1) if self.seconds else 0.0
        out.update(
            seconds=round(self.seconds, 3),
            records_per_second=rate,
            outage_seconds=round(self.outage_seconds, 1),
        )
        return out


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
        application: str = names.LANDING_APPLICATION,
        rng: random.Random | None = None,
    ) -> None:
        self.kinesis = kinesis
        self.s3 = s3
        self.stream_name = stream_name
        self.buckets = {"raw": raw_bucket, "quarantine": quarantine_bucket}
        self.config = config or LandingConfig()
        self.owner = owner or default_owner()
        self._stop = threading.Event()  # graceful: flush, checkpoint, release
        self._abort = threading.Event()  # another worker failed: leave without writing
        self._crashed = False  # a worker died as in kill -9 (tests): leave the leases too
        self.retrier, self.store = open_application(
            kinesis,
            dynamodb,
            table=checkpoint_table,
            stream_name=stream_name,
            owner=self.owner,
            lease_seconds=self.config.lease_seconds,
            application=application,
            policy=self.config.retry,
            stopping=self._stop,
            abort=self._abort,
            rng=rng,
        )
        self.clock = clock
        self.on_flush = on_flush
        self._failure: BaseException | None = None
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-put")
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._report = LandingReport()
        self.progress: Any = None  # a riskstream.progress.Progress, updated at each flush

    def stop(self) -> None:
        """Ask every shard to flush, checkpoint and return (safe from another thread)."""
        self._stop.set()

    # ---- the run ----------------------------------------------------------------------------
    def run(self, follow: bool = False, max_seconds: float | None = None) -> LandingReport:
        """``follow=False`` drains what is there and returns; ``True`` keeps reading until
        :meth:`stop`, Ctrl-C or ``max_seconds``, through any outage of the cloud."""
        report = self._report = LandingReport()
        self._stop.clear()
        self._abort.clear()
        self._crashed = False
        self._failure = None
        policy = self.config.retry
        self.retrier.policy = replace(policy, max_outage_seconds=None) if follow else policy
        retries_before = (self.retrier.retries, self.retrier.throttled)
        outages_before = (self.retrier.outage.outages, self.retrier.outage.seconds)
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
            report.retries = self.retrier.retries - retries_before[0]
            report.throttled = self.retrier.throttled - retries_before[1]
            report.outages = self.retrier.outage.outages - outages_before[0]
            report.outage_seconds = self.retrier.outage.seconds - outages_before[1]
        report.shards = len(done)
        logger.info("landing summary: %s", report.summary())
        return report

    def _list_shards(self) -> list[dict[str, Any]]:
        return every_shard(self.retrier, self.kinesis, self.stream_name)

    def _shard(self, shard: dict[str, Any], follow: bool) -> None:
        shard_id = shard["ShardId"]
        try:
            ShardReader(self, shard_id, shard_ending(shard)).run(follow)
        except (Aborted, LeaseHeldError):
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
            if self.progress is not None:
                self.progress.update(buffer.records)
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
        release = True
        try:
            self._read(state, follow)
        except LeaseLostError:
            release = False  # not ours any more
            raise
        except (Exception, KeyboardInterrupt):
            c._abort.set()
            raise
        except BaseException:
            c._crashed = True  # as in kill -9 (tests simulate it): nothing is cleaned up
            raise
        finally:
            # A clean stop, a drain's end or a failure gives the lease up so a successor starts
            # at once; a crash leaves it to expire.
            if release and not c._crashed:
                c.store.release(shard_id)

    def _read(self, state: ShardState, follow: bool) -> None:
        c, shard_id = self.c, self.shard_id
        pending = state.pending_last
        if pending:
            logger.info("shard %s: replaying an unfinished flush up to %s", shard_id, pending)
        cursor = ShardCursor(c.kinesis, c.stream_name, shard_id, c.retrier, self.cfg.get_limit)
        # the last sequence number read: an expired iterator is re-obtained after it
        position = state.checkpoint
        iterator: str | None = cursor.iterator_after(position)
        # Read ahead: while one page is judged and written, the next GetRecords is in flight.
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"get-{shard_id}")
        ahead: Future[dict[str, Any]] | None = None
        try:
            while not c._abort.is_set():
                if ahead is None:
                    ahead = fetcher.submit(cursor.get, str(iterator), position)
                response = ahead.result()
                ahead = None
                records = response.get("Records", [])
                iterator = response.get("NextShardIterator")
                if records:
                    position = records[-1]["SequenceNumber"]
                if records and iterator is not None:
                    ahead = fetcher.submit(cursor.get, iterator, position)
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
                if iterator is None and self.ending is None and not self._closed_now():
                    # Only a closed shard ends without a next iterator: this answer was wrong
                    # (cut short?), so read on after the last record read.
                    logger.warning(
                        "shard %s: GetRecords gave no next iterator but the shard is open; "
                        "reading on after %s",
                        shard_id,
                        position or "the oldest record",
                    )
                    iterator = cursor.iterator_after(position)
                    continue
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
        finally:
            fetcher.shutdown(wait=True, cancel_futures=True)

    def _closed_now(self) -> bool:
        """Whether the stream lists this shard as closed (it has an ending sequence number)."""
        for shard in self.c._list_shards():
            if shard["ShardId"] == self.shard_id:
                self.ending = shard_ending(shard)
        return self.ending is not None

    def _check_closed(self) -> None:
        """In --follow, notice (every relist interval) that this shard was closed by a reshard."""
        if time.monotonic() - self.last_check < self.cfg.relist_seconds:
            return
        self.last_check = time.monotonic()
        for shard in self.c._list_shards():
            if shard["ShardId"] == self.shard_id:
                self.ending = shard_ending(shard)

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
                raise Aborted(f"stopping shard {self.shard_id}: another worker failed")
            c.retrier.call(
                "S3 PutObject",
                c.s3.put_object,
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
