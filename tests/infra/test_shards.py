"""The shard-reading machinery without a server: which errors are retried, how long the waits
are, what an outage logs, and how a cursor gets past throttling and an expired iterator
(botocore's Stubber answers for Kinesis, so nothing touches the network)."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import boto3
import pytest
import urllib3.exceptions
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.stub import Stubber

from infra.shards import (
    Aborted,
    CheckpointStore,
    CloudUnreachableError,
    Retrier,
    RetryPolicy,
    ShardCursor,
    classify,
    lease_key,
)
from riskstream import names

pytestmark = pytest.mark.unit


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} says no"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "AnyOperation",
    )


class Clock:
    """A clock the fake sleep moves forward, so outage bounds are tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises each of ``errors`` in turn, then answers ``result``."""

    def __init__(self, errors: list[BaseException], result: Any = "ok") -> None:
        self.errors, self.result, self.calls = list(errors), result, 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


# ---- which errors are retried -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "connection"),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), "connection"),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), "connection"),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), "connection"),
        (ResponseStreamingError(error="reset"), "connection"),
        (urllib3.exceptions.ProtocolError("Connection aborted."), "connection"),
        (urllib3.exceptions.NewConnectionError(None, "refused"), "connection"),
        (ConnectionResetError(104, "reset by peer"), "connection"),
        (client_error("InternalFailure", 500), "server"),
        (client_error("ServiceUnavailable", 503), "server"),
        (client_error("ProvisionedThroughputExceededException", 400), "throttled"),
        (client_error("ThrottlingException", 400), "throttled"),
        (client_error("LimitExceededException", 400), "throttled"),
        (client_error("SlowDown", 503), "throttled"),
        (client_error("ResourceNotFoundException", 400), None),
        (client_error("ConditionalCheckFailedException", 400), None),
        (client_error("ExpiredIteratorException", 400), None),  # the cursor's business
        (client_error("AccessDeniedException", 403), None),
        (ValueError("a bug"), None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_connection_errors_5xx_and_throttling_are_retried_nothing_else(
    error: BaseException, kind: str | None
) -> None:
    assert classify(error) == kind


# ---- backoff ------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_its_cap_and_jitter_stays_in_the_upper_half() -> None:
    policy = RetryPolicy(base_seconds=0.1, cap_seconds=2.0, multiplier=2.0)
    assert [policy.ceiling(n) for n in range(7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    )
    assert policy.ceiling(10_000) == 2.0  # no overflow on a very long outage
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = policy.ceiling(attempt)
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempt, rng) <= ceiling


def test_jitter_is_reproducible_from_the_seed_and_differs_between_seeds() -> None:
    policy = RetryPolicy()
    draws = [[policy.delay(n, random.Random(seed)) for n in range(8)] for seed in (1, 1, 2)]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_seconds": 0},
        {"base_seconds": 3, "cap_seconds": 2},
        {"multiplier": 0.5},
        {"max_outage_seconds": 0},
    ],
)
def test_a_nonsense_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        RetryPolicy(**kwargs)


# ---- the retrier --------------------------------------------------------------------------------
def test_retries_until_success_waiting_the_seeded_backoff() -> None:
    clock = Clock()
    policy = RetryPolicy(base_seconds=0.1, cap_seconds=1.0)
    retrier = Retrier(policy, rng=random.Random(3), clock=clock, sleep=clock.sleep)
    errors: list[BaseException] = [EndpointConnectionError(endpoint_url="x")] * 5
    errors.insert(2, client_error("ProvisionedThroughputExceededException", 400))
    flaky = Flaky(errors)
    assert retrier.call("op", flaky, a=1) == "ok"
    assert flaky.calls == 7
    expected_rng = random.Random(3)
    assert clock.sleeps == [policy.delay(n, expected_rng) for n in range(6)]
    assert (retrier.retries, retrier.throttled) == (6, 1)
    assert retrier.outage.outages == 1 and not retrier.outage.down


def test_an_error_that_is_not_transient_is_raised_at_once() -> None:
    clock = Clock()
    retrier = Retrier(RetryPolicy(), clock=clock, sleep=clock.sleep)
    flaky = Flaky([client_error("ResourceNotFoundException", 400)])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        retrier.call("op", flaky)
    assert flaky.calls == 1 and clock.sleeps == [] and retrier.retries == 0


def test_a_bounded_run_gives_up_after_max_outage_seconds_with_a_clear_error() -> None:
    clock = Clock()
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=4.0, max_outage_seconds=30.0)
    retrier = Retrier(policy, rng=random.Random(0), clock=clock, sleep=clock.sleep)
    refused = Flaky([EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")] * 1000)
    with pytest.raises(CloudUnreachableError, match=r"max_outage_seconds=30.*resumes from"):
        retrier.call("Kinesis GetRecords", refused)
    waited = sum(clock.sleeps)
    assert 30.0 - 4.0 <= waited <= 30.0  # stopped before the next wait would pass the bound
    assert max(clock.sleeps) <= 4.0


def test_without_a_bound_it_keeps_retrying_through_a_long_outage() -> None:
    clock = Clock()
    retrier = Retrier(
        RetryPolicy(cap_seconds=5.0), rng=random.Random(0), clock=clock, sleep=clock.sleep
    )
    flaky = Flaky([EndpointConnectionError(endpoint_url="x")] * 400)  # about half an hour
    assert retrier.call("op", flaky) == "ok"
    assert sum(clock.sleeps) > 900 and max(clock.sleeps) <= 5.0


def test_a_stop_during_an_outage_waits_only_the_grace() -> None:
    clock = Clock()
    stopping = threading.Event()
    policy = RetryPolicy(cap_seconds=1.0, stop_grace_seconds=5.0)
    retrier = Retrier(
        policy, rng=random.Random(0), clock=clock, sleep=clock.sleep, stopping=stopping
    )
    calls = 0

    def down(**kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 20:
            stopping.set()
        raise ConnectionClosedError(endpoint_url="x")

    with pytest.raises(CloudUnreachableError, match="stopped before the cloud came back"):
        retrier.call("op", down)
    after_stop = sum(clock.sleeps[19:])
    assert after_stop <= 5.0 and calls > 20


def test_an_abort_ends_the_wait() -> None:
    abort = threading.Event()
    abort.set()
    retrier = Retrier(RetryPolicy(base_seconds=30, cap_seconds=60), abort=abort)
    with pytest.raises(Aborted):
        retrier.call("op", Flaky([EndpointConnectionError(endpoint_url="x")]))


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    retrier = Retrier(RetryPolicy(), rng=random.Random(0), clock=clock, sleep=clock.sleep)
    with caplog.at_level(logging.WARNING, logger="infra.shards"):
        for _ in range(3):  # three calls in one outage, as three shard threads would see it
            retrier.call("op", Flaky([EndpointConnectionError(endpoint_url="x")] * 4))
            clock.now -= 100  # the next call was sent before the recovery was noticed
        retrier.call("op", Flaky([client_error("ThrottlingException", 400)] * 3))  # no outage
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cloud unreachable since" in m and "retrying" in m for m in messages) == 1
    assert sum("cloud reachable again" in m for m in messages) == 1
    assert retrier.outage.outages == 1 and retrier.throttled == 3


# ---- a cursor through throttling and an expired iterator (Stubber: no network) ------------------
@pytest.fixture
def kinesis() -> Any:
    return boto3.client(
        "kinesis",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        endpoint_url="http://127.0.0.1:9",
    )


def record(seq: str) -> dict[str, Any]:
    return {
        "SequenceNumber": seq,
        "Data": b"{}",
        "PartitionKey": "p",
        "ApproximateArrivalTimestamp": 0,
    }


def test_a_throttled_get_records_is_retried_then_succeeds(kinesis: Any) -> None:
    clock = Clock()
    retrier = Retrier(RetryPolicy(), rng=random.Random(1), clock=clock, sleep=clock.sleep)
    cursor = ShardCursor(kinesis, "s", "shard-0", retrier, limit=100)
    page = {"Records": [record("11")], "NextShardIterator": "it-2", "MillisBehindLatest": 0}
    with Stubber(kinesis) as stub:
        for _ in range(2):
            stub.add_client_error(
                "get_records",
                service_error_code="ProvisionedThroughputExceededException",
                http_status_code=400,
                expected_params={"ShardIterator": "it-1", "Limit": 100},
            )
        stub.add_response("get_records", page, {"ShardIterator": "it-1", "Limit": 100})
        got = cursor.get("it-1", "10")
        stub.assert_no_pending_responses()
    assert [r["SequenceNumber"] for r in got["Records"]] == ["11"]
    assert (retrier.throttled, len(clock.sleeps)) == (2, 2)


def test_an_expired_iterator_is_reobtained_after_the_last_record_read(kinesis: Any) -> None:
    retrier = Retrier(RetryPolicy(), rng=random.Random(1), sleep=lambda s: None)
    cursor = ShardCursor(kinesis, "s", "shard-0", retrier, limit=100)
    with Stubber(kinesis) as stub:
        stub.add_client_error(
            "get_records", service_error_code="ExpiredIteratorException", http_status_code=400
        )
        stub.add_response(
            "get_shard_iterator",
            {"ShardIterator": "fresh"},
            {
                "StreamName": "s",
                "ShardId": "shard-0",
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": "42",
            },
        )
        stub.add_response(
            "get_records",
            {"Records": [record("43")], "NextShardIterator": "n"},
            {"ShardIterator": "fresh", "Limit": 100},
        )
        got = cursor.get("stale", "42")
        stub.assert_no_pending_responses()
    assert got["Records"][0]["SequenceNumber"] == "43" and cursor.reopened == 1


def test_with_nothing_read_yet_an_iterator_starts_at_the_oldest_record(kinesis: Any) -> None:
    cursor = ShardCursor(kinesis, "s", "shard-0", Retrier(sleep=lambda s: None))
    with Stubber(kinesis) as stub:
        stub.add_response(
            "get_shard_iterator",
            {"ShardIterator": "first"},
            {"StreamName": "s", "ShardId": "shard-0", "ShardIteratorType": "TRIM_HORIZON"},
        )
        assert cursor.iterator_after(None) == "first"


# ---- applications -------------------------------------------------------------------------------
def test_each_application_has_its_own_rows_and_landing_keeps_its_old_keys() -> None:
    assert lease_key(names.LANDING_APPLICATION, "st", "shard-1") == "st/shard-1"
    assert lease_key("live", "st", "shard-1") == "live:st/shard-1"
    store = CheckpointStore(None, "t", "st", "me", application="live")
    assert store.key("shard-1") == {"lease_key": {"S": "live:st/shard-1"}}
    with pytest.raises(ValueError, match="application name 'a b'"):
        CheckpointStore(None, "t", "st", "me", application="a b")


# ---- answers cut short by a dying cloud ---------------------------------------------------------
class Answer:
    def __init__(self, status: int, content: bytes) -> None:
        self.status_code, self.content = status, content


class Model:
    name = "GetRecords"


@pytest.mark.parametrize(
    ("status", "body", "cut"),
    [
        (200, b'{"Records": [], "NextShardIterator": "x"}', False),
        (200, b"{}", False),
        (200, b"", False),  # some actions answer nothing at all
        (400, b'{"__type": "Throttl', False),  # an error answer is botocore's business
        (200, b'{"Records": [{"Data": "eyJ', True),
        (200, b'{"Records": [], "NextShardIter', True),
    ],
)
def test_a_2xx_answer_that_is_not_whole_json_is_refused(
    status: int, body: bytes, cut: bool
) -> None:
    from infra.shards import IncompleteAnswerError, _whole_json

    if cut:
        with pytest.raises(IncompleteAnswerError, match=r"GetRecords answered .* not whole JSON"):
            _whole_json(http_response=Answer(status, body), model=Model())
        assert classify(IncompleteAnswerError("x")) == "connection"  # so it is retried
    else:
        _whole_json(http_response=Answer(status, body), model=Model())


def test_the_guard_is_registered_on_json_clients_only(kinesis: Any) -> None:
    from infra.shards import IncompleteAnswerError, refuse_cut_answers

    cut = {
        "http_response": Answer(200, b'{"Records": [{"Da'),
        "model": Model(),
        "parsed": {},
        "context": {},
    }
    kinesis.meta.events.emit("after-call.kinesis.GetRecords", **cut)  # not yet guarded
    refuse_cut_answers(kinesis)
    refuse_cut_answers(kinesis)  # once is enough: registering twice changes nothing
    with pytest.raises(IncompleteAnswerError):
        kinesis.meta.events.emit("after-call.kinesis.GetRecords", **cut)
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    refuse_cut_answers(s3)  # rest-xml: left alone
    s3.meta.events.emit("after-call.s3.PutObject", **cut)
    refuse_cut_answers(object())  # not a boto3 client: left alone


class CutKinesis:
    """Answers GetRecords and GetShardIterator with an empty body once, then properly."""

    def __init__(self) -> None:
        self.calls = {"get_records": 0, "get_shard_iterator": 0}

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["get_records"] += 1
        if self.calls["get_records"] == 1:
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}
        return {"Records": [record("8")], "NextShardIterator": "n", "MillisBehindLatest": 0}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["get_shard_iterator"] += 1
        if self.calls["get_shard_iterator"] == 1:
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}
        return {"ShardIterator": "it"}


def test_a_cursor_retries_answers_missing_what_every_real_answer_has() -> None:
    clock = Clock()
    retrier = Retrier(RetryPolicy(), rng=random.Random(2), clock=clock, sleep=clock.sleep)
    fake = CutKinesis()
    cursor = ShardCursor(fake, "s", "shard-0", retrier)
    assert cursor.iterator_after("7") == "it"
    page = cursor.get("it", "7")
    assert page["Records"][0]["SequenceNumber"] == "8"
    assert fake.calls == {"get_records": 2, "get_shard_iterator": 2}
    assert retrier.retries == 2
