"""Send events to a Kinesis stream with PutRecords. I/O module: takes a boto3 Kinesis client.

- Events are validated and serialized once (:mod:`ingestion.records`); what can never be sent is
  reported as rejected with a reason.
- One sending lane per open shard (records are routed by the MD5 of their partition key, as Kinesis
  does), one request in flight per lane: shards are written concurrently while each account's
  events keep their order.
- Only the failed entries of a partial failure are retried, with exponential backoff and full
  jitter; entries still failing after ``max_attempts`` are reported as failed with the last error.
- An optional token-bucket rate limit per shard emulates real shard limits (1,000 records/s and
  1 MB/s by default).
- Ctrl-C stops sending: the requests in flight finish, nothing more is sent, and the report says
  how many were sent, retried, failed and left unsent.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.kinesis import list_shards
from ingestion.csv_replay import FieldNulled, RowError
from ingestion.records import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    Record,
    Rejected,
    ShardRange,
    prepare,
    shard_index,
    shard_ranges,
)
from riskstream.checks import require_positive
from riskstream.progress import Progress

logger = logging.getLogger(__name__)

RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "LimitExceededException",
        "RequestTimeout",
        "ConnectionError",
    }
)


class ProducerError(RuntimeError):
    """Sending cannot continue (no such stream, access denied); the message says what to do."""


@dataclass(frozen=True)
class RateLimit:
    """Per-shard limits, like a real Kinesis shard's write capacity."""

    records_per_second: float = 1000.0
    bytes_per_second: float = 1_000_000.0

    def __post_init__(self) -> None:
        require_positive(
            records_per_second=self.records_per_second, bytes_per_second=self.bytes_per_second
        )


class TokenBucket:
    """Tokens refill at ``rate`` per second up to ``rate`` (a one-second burst).

    ``take(n)`` may drive the balance negative (a 5 MB batch against a 1 MB/s bucket) and returns
    how long to wait for the debt to be repaid, so the average rate holds.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.stamp = clock()

    def take(self, n: float) -> float:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(frozen=True)
class Failure:
    """A record that could not be delivered after every retry."""

    event_id: str
    account_id: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class ProduceReport:
    """What happened to every event handed to :meth:`Producer.send`."""

    sent: int = 0
    retried: int = 0
    bytes_sent: int = 0
    requests: int = 0
    unsent: int = 0  # left behind by an interruption
    failed: list[Failure] = field(default_factory=list)
    rejected: list[Rejected | RowError] = field(default_factory=list)
    nulled: list[FieldNulled] = field(default_factory=list)  # fields sent as null, row kept
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def records_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        reasons = Counter(
            [f.reason for f in self.failed] + [r.reason for r in self.rejected]
        ).most_common()
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": len(self.failed),
            "rejected": len(self.rejected),
            "unsent": self.unsent,
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "interrupted": self.interrupted,
            "reasons": dict(reasons),
            "nulled_fields": len(self.nulled),
            "nulled_reasons": dict(Counter(n.reason for n in self.nulled).most_common()),
        }


class Producer:
    """PutRecords with per-shard lanes, partial-failure retries and an optional rate limit."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        *,
        rate_limit: RateLimit | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        max_batch_records: int = MAX_BATCH_RECORDS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        validate: bool = True,
        progress: bool = False,
        reporter: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts} must be at least 1")
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.rate_limit = rate_limit
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.validate = validate
        self.progress = progress
        self.reporter = reporter  # periodic log lines and the run's console (riskstream.progress)
        self.sleep = sleep
        self.clock = clock  # the rate limit's clock (tests pair it with ``sleep``)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fatal: BaseException | None = None

    # ---- public -----------------------------------------------------------------------------
    def send(
        self,
        events: Iterable[Mapping[str, Any] | RowError | FieldNulled],
        total: int | None = None,
        now: datetime | None = None,
    ) -> ProduceReport:
        """Send every event and return a report; raise only for fatal errors, never a bad event."""
        from tqdm import tqdm

        report = ProduceReport()
        ranges = self._ranges()
        lanes = max(1, len(ranges))
        queues: list[queue.Queue[list[Record] | None]] = [
            queue.Queue(maxsize=2) for _ in range(lanes)
        ]
        bar = tqdm(
            total=total,
            unit="rec",
            unit_scale=True,
            disable=not self.progress,
            desc=f"put {self.stream_name}",
            dynamic_ncols=True,
        )
        threads = [
            threading.Thread(
                target=self._lane, args=(q, report, bar), name=f"put-lane-{i}", daemon=True
            )
            for i, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        buffers: list[list[Record]] = [[] for _ in range(lanes)]
        sizes = [0] * lanes
        started = time.perf_counter()
        moment = now or datetime.now(UTC)
        try:
            for item in prepare(_split_row_errors(events, report), moment, self.validate):
                if self._fatal is not None:
                    break
                if isinstance(item, Rejected):
                    report.rejected.append(item)
                    bar.update(1)
                    if self.reporter is not None:
                        self.reporter.update(1)
                    continue
                lane = shard_index(item.partition_key, ranges) if lanes > 1 else 0
                size = item.size
                buf = buffers[lane]
                if buf and (
                    len(buf) >= self.max_batch_records or sizes[lane] + size > self.max_batch_bytes
                ):
                    queues[lane].put(buf)
                    buffers[lane], sizes[lane] = [], 0
                    buf = buffers[lane]
                buf.append(item)
                sizes[lane] += size
            for lane, buf in enumerate(buffers):
                if buf and self._fatal is None:
                    queues[lane].put(buf)
                    buffers[lane] = []
        except KeyboardInterrupt:
            report.interrupted = True
            self._stop.set()
            logger.warning("interrupted: finishing requests in flight, sending nothing more")
        finally:
            report.unsent += sum(len(b) for b in buffers)
            for q in queues:
                q.put(None)
            for thread in threads:
                while thread.is_alive():
                    try:
                        thread.join(timeout=0.5)
                    except KeyboardInterrupt:  # a second Ctrl-C: stop retrying too
                        report.interrupted = True
                        self._stop.set()
            report.seconds = time.perf_counter() - started
            bar.close()
            if self.reporter is not None:
                self.reporter.close()
        if self._fatal is not None:
            raise ProducerError(str(self._fatal)) from self._fatal
        logger.info("produce summary: %s", report.summary())
        return report

    # ---- internals --------------------------------------------------------------------------
    def _ranges(self) -> list[ShardRange]:
        try:
            shards = list_shards(self.kinesis, self.stream_name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                raise ProducerError(
                    f"Kinesis stream {self.stream_name!r} does not exist; create it with "
                    "`riskstream provision`"
                ) from None
            raise
        return shard_ranges(shards)

    def _lane(
        self, jobs: queue.Queue[list[Record] | None], report: ProduceReport, bar: Any
    ) -> None:
        buckets = (
            (
                TokenBucket(self.rate_limit.records_per_second, self.clock),
                TokenBucket(self.rate_limit.bytes_per_second, self.clock),
            )
            if self.rate_limit
            else None
        )
        while True:
            batch = jobs.get()
            if batch is None:
                return
            if self._stop.is_set() or self._fatal is not None:
                with self._lock:
                    report.unsent += len(batch)
                continue
            try:
                self._put(batch, report, bar, buckets)
            except BaseException as exc:  # surfaced by send() in the main thread
                self._fatal = exc
                self._stop.set()
                with self._lock:
                    report.unsent += len(batch)

    def _put(
        self,
        batch: list[Record],
        report: ProduceReport,
        bar: Any,
        buckets: tuple[TokenBucket, TokenBucket] | None,
    ) -> None:
        pending = batch
        attempt = 0
        while pending:
            if buckets is not None:
                wait = max(
                    buckets[0].take(len(pending)), buckets[1].take(sum(r.size for r in pending))
                )
                if wait > 0:
                    self.sleep(wait)
            entries = [{"Data": r.data, "PartitionKey": r.partition_key} for r in pending]
            attempt += 1
            try:
                response = self.kinesis.put_records(StreamName=self.stream_name, Records=entries)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "ClientError")
                if code not in RETRYABLE:
                    raise ProducerError(
                        f"PutRecords to {self.stream_name!r} failed: {exc}"
                    ) from exc
                failed = [(r, code, str(exc)) for r in pending]
                sent_now: list[Record] = []
            except BotoCoreError as exc:
                failed = [(r, "ConnectionError", str(exc)) for r in pending]
                sent_now = []
            else:
                if not response.get("FailedRecordCount"):
                    sent_now, failed = pending, []
                else:
                    sent_now, failed = [], []
                    for record, result in zip(pending, response["Records"], strict=True):
                        code = result.get("ErrorCode")
                        if code:
                            failed.append((record, code, result.get("ErrorMessage", "")))
                        else:
                            sent_now.append(record)
            retry = [f for f in failed if f[1] in RETRYABLE]
            final = [f for f in failed if f[1] not in RETRYABLE]
            if attempt >= self.max_attempts or self._stop.is_set():
                final, retry = final + retry, []
            with self._lock:
                report.requests += 1
                report.sent += len(sent_now)
                report.bytes_sent += sum(len(r.data) for r in sent_now)
                report.retried += len(retry)
                for record, code, message in final:
                    report.failed.append(
                        Failure(
                            record.event_id,
                            record.partition_key,
                            code,
                            f"{message or code} (after {attempt} attempts)",
                        )
                    )
                bar.update(len(sent_now) + len(final))
                if self.reporter is not None:
                    self.reporter.update(len(sent_now) + len(final))
                if retry or final:
                    bar.set_postfix(retried=report.retried, failed=len(report.failed))
            pending = [r for r, _, _ in retry]
            if pending:
                delay = self._rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
                logger.debug(
                    "%d of %d entries failed (%s); retry %d in %.3fs",
                    len(pending),
                    len(entries),
                    retry[0][1],
                    attempt,
                    delay,
                )
                self.sleep(delay)


def _split_row_errors(
    events: Iterable[Mapping[str, Any] | RowError | FieldNulled], report: ProduceReport
) -> Iterable[Mapping[str, Any]]:
    """Pass events through; record a source's :class:`RowError` items as rejected and its
    :class:`FieldNulled` notes (the row's event goes on with that field null) as nulled."""
    for item in events:
        if isinstance(item, RowError):
            report.rejected.append(item)
            continue
        if isinstance(item, FieldNulled):
            report.nulled.append(item)
            continue
        yield item
