"""Reading a Kinesis stream as one consumer application: retries, leases, checkpoints, cursors.

The pieces a stream consumer needs whatever it does with the records, shared by landing
(ingestion/consumer.py) and any other application of the same stream (each with its own
``application`` name, hence its own leases and checkpoints, as two KCL applications are):

- :class:`ReaderConfig`: the knobs every reading application shares (page size, leases, retries).
- :class:`RetryPolicy` and :class:`Retrier`: every call to the cloud is retried with capped,
  jittered exponential backoff on connection errors, HTTP 5xx and throttling; an outage is
  logged once when it starts and once when it ends. ``--follow`` consumers never give up
  (``max_outage_seconds=None``); a bounded run ends with :class:`CloudUnreachableError`.
- :class:`CheckpointStore`: per-shard checkpoint and lease rows in the DynamoDB checkpoint
  table; every write is conditional on still owning the lease; a clean stop releases it.
- :class:`ShardCursor`: GetShardIterator/GetRecords for one shard, re-obtaining an expired
  iterator AFTER_SEQUENCE_NUMBER of the last record read (the checkpoint when nothing is
  buffered), so a cloud restart neither skips nor repeats a record.
- :func:`ready_shards`: children only after their parents (resharded streams keep order).
- :func:`open_application`: the retrier and checkpoint store an application reads with;
  :func:`every_shard`: the stream's shards, listed through the retrier.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3.exceptions
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from infra.kinesis import list_shards
from riskstream import names
from riskstream.checks import require_positive

logger = logging.getLogger(__name__)

T = TypeVar("T")
SHARD_END = "SHARD_END"

# Error codes AWS uses for "slow down" (Kinesis, DynamoDB, S3, the API gateway in front of all).
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "LimitExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
    }
)
# Transport failures: refused, reset, closed mid-response, timed out (botocore wraps most
# urllib3 errors; the rest, and the standard library's, are listed for the ones it does not).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    BotoConnectionError,
    HTTPClientError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
_APPLICATION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LeaseHeldError(RuntimeError):
    """Another live consumer of the same application holds a shard's lease."""


class LeaseLostError(RuntimeError):
    """This consumer's lease was taken over (it expired); stop without writing a checkpoint."""


class CloudUnreachableError(RuntimeError):
    """The cloud stayed unreachable longer than a bounded run allows (``max_outage_seconds``)."""


class IncompleteAnswerError(Exception):
    """A 200 answer without the fields every real answer has (a reply cut short by a dying
    cloud): retried like a connection error rather than trusted."""


class Aborted(Exception):
    """A retry was abandoned because the consumer is aborting (another worker failed)."""


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def classify(exc: BaseException) -> str | None:
    """``"connection"``, ``"server"`` (HTTP 5xx), ``"throttled"``, or None (do not retry)."""
    if isinstance(exc, ClientError):
        if error_code(exc) in THROTTLING_CODES:
            return "throttled"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int) and status >= 500:
            return "server"
        return None
    if isinstance(exc, (*CONNECTION_ERRORS, IncompleteAnswerError)):
        return "connection"
    return None


def refuse_cut_answers(client: Any) -> None:
    """Make a JSON-protocol client (Kinesis, DynamoDB) raise :class:`IncompleteAnswerError` on a
    2xx answer whose body is not whole JSON. A cloud killed while writing an answer without a
    Content-Length leaves a truncated body, which botocore would parse into an empty success
    (a GetRecords page without records or next iterator reads as a closed shard)."""
    meta = getattr(client, "meta", None)
    model = getattr(meta, "service_model", None)
    if meta is None or model is None or getattr(model, "protocol", None) != "json":
        return
    meta.events.register(
        f"after-call.{model.service_id.hyphenize()}",
        _whole_json,
        unique_id="riskstream-whole-json-answers",
    )


def _whole_json(http_response: Any = None, model: Any = None, **kwargs: Any) -> None:
    if http_response is None or not 200 <= http_response.status_code < 300:
        return
    body = http_response.content
    if not body:
        return
    try:
        json.loads(body)
    except ValueError:
        name = getattr(model, "name", "a call")
        raise IncompleteAnswerError(
            f"{name} answered {len(body)} bytes that are not whole JSON (cut short?)"
        ) from None


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with "equal jitter": attempt ``n`` waits between half and all
    of ``min(cap, base * multiplier**n)``, so waits grow, never exceed the cap, and spread out.

    ``max_outage_seconds``: how long one call may keep failing before the run gives up (None:
    never, for --follow). ``stop_grace_seconds``: once a stop is asked for, how much longer to
    try (the last flush and the lease release need the cloud) before giving up.
    """

    base_seconds: float = 0.1
    cap_seconds: float = 5.0
    multiplier: float = 2.0
    max_outage_seconds: float | None = None
    stop_grace_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"backoff needs 0 < base_seconds <= cap_seconds, got {self.base_seconds} and "
                f"{self.cap_seconds}"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier={self.multiplier} must be at least 1")
        require_positive(max_outage_seconds=self.max_outage_seconds)

    def ceiling(self, attempt: int) -> float:
        """The longest wait after the ``attempt``-th consecutive failure (0-based)."""
        # min() before the power would overflow on long outages: stop growing once capped
        if attempt > 64:
            return self.cap_seconds
        return float(min(self.cap_seconds, self.base_seconds * self.multiplier**attempt))

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class ReaderConfig:
    """The knobs every application reading a stream's shards has (landing's
    :class:`ingestion.consumer.LandingConfig`, the live scorer's
    :class:`serving.live.LiveConfig`): the retries, the GetRecords page size (at most 10,000,
    as Kinesis allows), the wait at the tip of a shard, the lease's length (renewed every third
    of it) and how often the shard list is read again to notice a reshard.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    get_limit: int = 10_000
    idle_sleep: float = 0.2
    lease_seconds: float = 30.0
    relist_seconds: float = 15.0

    def __post_init__(self) -> None:
        if not 1 <= self.get_limit <= 10_000:
            raise ValueError(f"get_limit={self.get_limit} must be between 1 and 10,000")
        if self.idle_sleep < 0:
            raise ValueError(f"idle_sleep={self.idle_sleep} must not be negative")
        if self.lease_seconds < 1:
            raise ValueError(f"lease_seconds={self.lease_seconds} must be at least 1")


class OutageLog:
    """Says once that the cloud is unreachable and once that it is back, however many threads
    see the failure; counts outages and their total length."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._since_wall: datetime | None = None
        self._recovered_at = float("-inf")
        self.outages = 0
        self.seconds = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, call_started: float, endpoint: str) -> None:
        with self._lock:
            # a call sent before the cloud came back belongs to the outage just ended
            if self._since is not None or call_started < self._recovered_at:
                return
            self._since, self._since_wall = self.clock(), datetime.now(UTC)
            self.outages += 1
        logger.warning(
            "cloud unreachable since %s (%s%s: %s), retrying",
            self._since_wall.isoformat(timespec="seconds"),
            type(exc).__name__,
            f" at {endpoint}" if endpoint else "",
            exc,
        )

    def succeeded(self) -> None:
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            now = self.clock()
            lasted, self._since = now - self._since, None
            self._recovered_at = now
            self.seconds += lasted
        logger.warning("cloud reachable again after %.1fs; resuming from checkpoints", lasted)


class Retrier:
    """Runs cloud calls with :class:`RetryPolicy`; shared by every thread of one consumer.

    ``rng`` makes the jitter reproducible; ``stopping`` (a graceful stop was asked for) bounds
    an outage to the policy's grace; ``abort`` (another worker failed) ends waiting at once;
    ``sleep`` is only for tests that must not wait.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        rng: random.Random | None = None,
        stopping: threading.Event | None = None,
        abort: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        endpoint: str = "",
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.rng = rng if rng is not None else random.Random()
        self.stopping = stopping
        self.abort = abort
        self.clock = clock
        self._sleep = sleep
        self.endpoint = endpoint
        self.outage = OutageLog(clock)
        self._lock = threading.Lock()
        self.retries = 0
        self.throttled = 0

    def call(self, operation: str, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """``fn(**kwargs)``, retried on connection errors, 5xx and throttling."""
        attempt = 0
        first_failure: float | None = None
        stop_seen: float | None = None
        while True:
            started = self.clock()
            try:
                result = fn(**kwargs)
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                now = self.clock()
                first_failure = now if first_failure is None else first_failure
                with self._lock:
                    self.retries += 1
                    self.throttled += kind == "throttled"
                if kind == "throttled":
                    logger.debug("%s throttled (%s); backing off", operation, error_code(exc))
                else:
                    self.outage.failed(exc, started, self.endpoint)
                delay = self.policy.delay(attempt, self.rng)
                attempt += 1
                deadline = float("inf")
                if self.policy.max_outage_seconds is not None:
                    deadline = first_failure + self.policy.max_outage_seconds
                if self.stopping is not None and self.stopping.is_set():
                    stop_seen = now if stop_seen is None else stop_seen
                    deadline = min(deadline, stop_seen + self.policy.stop_grace_seconds)
                if now + delay > deadline:
                    raise CloudUnreachableError(
                        f"{operation} kept failing for {now - first_failure:.0f}s "
                        f"({type(exc).__name__}: {exc}); "
                        + (
                            "stopped before the cloud came back"
                            if stop_seen is not None
                            else f"gave up after max_outage_seconds="
                            f"{self.policy.max_outage_seconds:g}"
                        )
                        + ". Nothing is lost: the next run resumes from the checkpoints."
                    ) from exc
                self._wait(delay)
                continue
            self.outage.succeeded()
            return result

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self.abort is not None:
            if self.abort.wait(seconds):
                raise Aborted("stopped retrying: the consumer is aborting")
            return
        else:
            time.sleep(seconds)
        if self.abort is not None and self.abort.is_set():
            raise Aborted("stopped retrying: the consumer is aborting")


@dataclass(frozen=True)
class ShardState:
    checkpoint: str | None
    pending_last: str | None
    finished: bool


def lease_key(application: str, stream_name: str, shard_id: str) -> str:
    """The checkpoint row of one shard for one application. Landing keeps the key it always had
    (``<stream>/<shard>``), so checkpoints written before applications existed still count."""
    if application == names.LANDING_APPLICATION:
        return f"{stream_name}/{shard_id}"
    return f"{application}:{stream_name}/{shard_id}"


class CheckpointStore:
    """Per-shard checkpoint and lease items in the DynamoDB table (hash key ``lease_key``).

    Each item has an ``owner`` and ``lease_expires_at``; every write is conditional on still
    owning it, so two consumers cannot corrupt each other's checkpoints. Every call goes through
    ``retrier`` (calls are idempotent: a retry after a lost response changes nothing more).
    """

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        stream_name: str,
        owner: str,
        lease_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        *,
        application: str = names.LANDING_APPLICATION,
        retrier: Retrier | None = None,
    ) -> None:
        if not _APPLICATION_NAME.match(application):
            raise ValueError(
                f"application name {application!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        self.dynamodb = dynamodb
        self.table = table
        self.stream_name = stream_name
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.application = application
        self.retrier = retrier

    def _call(self, operation: str, require: str | None = None, **kwargs: Any) -> Any:
        fn = getattr(self.dynamodb, operation)

        def call(**kw: Any) -> Any:
            answer = fn(**kw)
            if require is not None and require not in answer:
                raise IncompleteAnswerError(f"{operation} answered without {require}")
            return answer

        if self.retrier is None:
            return call(**kwargs)
        return self.retrier.call(f"DynamoDB {operation}", call, **kwargs)

    def key(self, shard_id: str) -> dict[str, Any]:
        return {"lease_key": {"S": lease_key(self.application, self.stream_name, shard_id)}}

    def read(self, shard_id: str) -> dict[str, Any]:
        item = self._call(
            "get_item", TableName=self.table, Key=self.key(shard_id), ConsistentRead=True
        ).get("Item", {})
        return {k: next(iter(v.values())) for k, v in item.items()}

    def acquire(self, shard_id: str) -> ShardState:
        now = self.clock()
        try:
            item = self._call(
                "update_item",
                require="Attributes",  # asked for ALL_NEW: an answer without it was cut short
                TableName=self.table,
                Key=self.key(shard_id),
                UpdateExpression="SET #o = :me, lease_expires_at = :exp, acquired_at = :now, "
                "application = :app",
                ConditionExpression=(
                    "attribute_not_exists(#o) OR #o = :me OR lease_expires_at < :now"
                ),
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":me": {"S": self.owner},
                    ":exp": {"N": repr(now + self.lease_seconds)},
                    ":now": {"N": repr(now)},
                    ":app": {"S": self.application},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            held = self.read(shard_id)
            expires = float(held.get("lease_expires_at", 0))
            raise LeaseHeldError(
                f"shard {shard_id} of stream {self.stream_name} is leased by consumer "
                f"{held.get('owner')!r} until "
                f"{datetime.fromtimestamp(expires, UTC).isoformat(timespec='seconds')} "
                f"(in {max(0.0, expires - now):.0f}s, application {self.application!r}): another "
                "consumer is running. Stop it, or "
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
            self._call(
                "update_item",
                TableName=self.table,
                Key=self.key(shard_id),
                UpdateExpression=expression,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}, **values},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
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
        """Move the checkpoint, after what it covers is safely written."""
        self._owned_update(
            shard_id,
            "SET checkpoint = :c, lease_expires_at = :exp, updated_at = :t REMOVE pending_last",
            {":c": {"S": last_seq}, ":t": {"N": repr(self.clock())}},
        )

    def renew(self, shard_id: str) -> None:
        self._owned_update(shard_id, "SET lease_expires_at = :exp", {})

    def release(self, shard_id: str) -> bool:
        """Give the lease up (a clean stop), so a successor takes the shard at once. Idempotent:
        a release whose answer was lost and is retried finds the lease already free."""
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=self.key(shard_id),
                UpdateExpression="SET lease_expires_at = :zero REMOVE #o",
                ConditionExpression="attribute_not_exists(#o) OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}, ":zero": {"N": "0"}},
            )
        except (ClientError, CloudUnreachableError, Aborted) as exc:
            logger.warning("could not release the lease on %s: %s", shard_id, exc)
            return False
        return True


@dataclass(eq=False)
class ShardCursor:
    """Reads one shard after a position (a sequence number, or the oldest record for None).

    :meth:`get` fetches the page at an iterator; when the iterator has expired (real Kinesis:
    five minutes, e.g. across a long outage) it asks for a new one AFTER_SEQUENCE_NUMBER of the
    last record read before that page, so nothing is skipped or read twice.
    """

    kinesis: Any
    stream_name: str
    shard_id: str
    retrier: Retrier
    limit: int = 10_000
    reopened: int = field(default=0, init=False)
    # (checkpoint, oldest record kept) for each time records after a checkpoint had expired
    expired: list[tuple[str, str]] = field(default_factory=list, init=False)
    # the position the last iterator resumed after
    _resumed_after: str | None = field(default=None, init=False)

    def iterator_after(self, position: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if position:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=position
            )
            self._resumed_after = position
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        response = self.retrier.call("Kinesis GetShardIterator", self._iterator, **kwargs)
        return str(response["ShardIterator"])

    def _check_retention(self, position: str, first: str) -> None:
        """Say so when records after ``position`` expired before they were read.

        Kinesis keeps records for the stream's retention period (24 h by default); an iterator
        after an expired sequence number starts at the oldest record kept (as TRIM_HORIZON does),
        so a consumer that fell that far behind reads on without error, and the records in
        between are gone. Called when the first record read after ``position`` is not the next
        sequence number (always so on AWS, whose numbers are sparse; on the local cloud only
        after a trim): if the oldest record kept comes after ``position``, the checkpointed
        record itself expired, and the gap is recorded in :attr:`expired` and logged."""
        response = self.retrier.call(
            "Kinesis GetShardIterator",
            self._iterator,
            StreamName=self.stream_name,
            ShardId=self.shard_id,
            ShardIteratorType="TRIM_HORIZON",
        )
        page = self.retrier.call(
            "Kinesis GetRecords", self._records, ShardIterator=response["ShardIterator"], Limit=1
        )
        oldest = str(page["Records"][0]["SequenceNumber"]) if page["Records"] else first
        if int(oldest) <= int(position):
            return  # the checkpointed record is still kept: nothing after it expired
        self.expired.append((position, oldest))
        logger.warning(
            "shard %s: records after sequence number %s and before %s expired before they were "
            "read (the stream keeps records for its retention period, 24 h unless raised); "
            "reading on from the oldest record kept",
            self.shard_id,
            position,
            oldest,
        )

    def _iterator(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.kinesis.get_shard_iterator(**kwargs)
        if not response.get("ShardIterator"):
            raise IncompleteAnswerError(f"GetShardIterator answered {sorted(response)}")
        return response

    def _records(self, **kwargs: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.kinesis.get_records(**kwargs)
        # every real answer has Records (maybe empty); closed shards end without a next iterator
        if "Records" not in page:
            raise IncompleteAnswerError(f"GetRecords answered {sorted(page)}")
        return page

    def get(self, iterator: str, position: str | None) -> dict[str, Any]:
        """The page at ``iterator``, which starts right after ``position``."""
        while True:
            try:
                page: dict[str, Any] = self.retrier.call(
                    "Kinesis GetRecords", self._records, ShardIterator=iterator, Limit=self.limit
                )
                resumed, records = self._resumed_after, page["Records"]
                if resumed is not None and resumed == position and records:
                    self._resumed_after = None  # the first page after a resume only
                    first = str(records[0]["SequenceNumber"])
                    if int(first) > int(resumed) + 1:
                        self._check_retention(resumed, first)
                return page
            except ClientError as exc:
                if error_code(exc) != "ExpiredIteratorException":
                    raise
                self.reopened += 1
                logger.info(
                    "shard %s: iterator expired; reading again after %s",
                    self.shard_id,
                    position or "the oldest record",
                )
                iterator = self.iterator_after(position)


def open_application(
    kinesis: Any,
    dynamodb: Any,
    *,
    table: str,
    stream_name: str,
    owner: str,
    lease_seconds: float,
    application: str,
    policy: RetryPolicy,
    stopping: threading.Event,
    abort: threading.Event,
    rng: random.Random | None = None,
) -> tuple[Retrier, CheckpointStore]:
    """What one consumer application of ``stream_name`` reads with: a :class:`Retrier` that
    names the cloud's endpoint in its outage logs and ends on ``stopping`` / ``abort``, and the
    :class:`CheckpointStore` of its leases, retried by it. Both clients refuse answers cut
    short (:func:`refuse_cut_answers`)."""
    for client in (kinesis, dynamodb):
        refuse_cut_answers(client)
    retrier = Retrier(
        policy,
        rng=rng,
        stopping=stopping,
        abort=abort,
        endpoint=str(getattr(getattr(kinesis, "meta", None), "endpoint_url", "") or ""),
    )
    store = CheckpointStore(
        dynamodb,
        table,
        stream_name,
        owner,
        lease_seconds,
        application=application,
        retrier=retrier,
    )
    return retrier, store


def every_shard(retrier: Retrier, kinesis: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of the stream, through ``retrier``; a stream has at least one, so an empty
    list is an answer cut short and is asked again."""

    def listed() -> list[dict[str, Any]]:
        shards = list_shards(kinesis, stream_name)
        if not shards:
            raise IncompleteAnswerError(f"ListShards answered no shards for stream {stream_name}")
        return shards

    return retrier.call("Kinesis ListShards", listed)


def ready_shards(
    shards: list[dict[str, Any]], done: set[str], active: set[str]
) -> list[dict[str, Any]]:
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


def shard_ending(shard: dict[str, Any]) -> str | None:
    """EndingSequenceNumber once a shard is closed (split or merged), else None."""
    ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
    return str(ending) if ending is not None else None
