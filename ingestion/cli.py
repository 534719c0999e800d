"""`riskstream produce` and `riskstream consume`."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from riskstream import names
from riskstream.commands import CommandError, user_errors
from riskstream.settings import Settings


def register(subparsers: Any) -> None:
    from ingestion.tasks import DEFAULT_ACCOUNTS, DEFAULT_MONTHS, DEFAULT_SEED, SOURCES

    produce = subparsers.add_parser(
        "produce",
        help="stream events into the Kinesis stream: synthetic, the Taiwan data, or your CSV",
        description="Send events with PutRecords (partition key account_id). Invalid or oversize "
        "events are reported with a reason, never dropped silently.",
    )
    produce.add_argument("--source", choices=SOURCES, default=names.DEFAULT_SOURCE)
    produce.add_argument(
        "--accounts", type=int, default=DEFAULT_ACCOUNTS, help="synthetic: number of accounts"
    )
    produce.add_argument(
        "--months", type=int, default=DEFAULT_MONTHS, help="synthetic: activity months"
    )
    produce.add_argument("--seed", type=int, default=DEFAULT_SEED, help="synthetic: random seed")
    produce.add_argument("--start", default=None, help="synthetic: first month, YYYY-MM")
    produce.add_argument(
        "--path",
        type=Path,
        default=None,
        help="taiwan: the UCI CSV (default: the copy shipped in data/taiwan_default/); "
        "csv: your .csv or .parquet",
    )
    produce.add_argument("--mapping", type=Path, default=None, help="csv: mapping JSON file")
    produce.add_argument(
        "--rate-limit",
        action="store_true",
        help="emulate real shard limits (1,000 records/s and 1 MB/s per shard)",
    )
    produce.add_argument("--rate-records", type=float, default=None, help="records/s per shard")
    produce.add_argument("--rate-bytes", type=float, default=None, help="bytes/s per shard")
    produce.add_argument("--limit", type=int, default=None, help="send only the first N events")
    produce.add_argument("--no-progress", action="store_true", help="no progress bar")
    produce.add_argument(
        "--report", type=Path, default=None, help="write the full report (JSON) here"
    )
    produce.set_defaults(func=produce_cmd)

    consume = subparsers.add_parser(
        "consume",
        help="land the stream in s3://<raw>/events/dt=.../hr=.../ (checkpointed, exactly once)",
        description="Read every shard from its checkpoint, write gzip JSON lines by UTC arrival "
        "hour, "
        "quarantine invalid records with a reason, and checkpoint only after the write.",
    )
    mode = consume.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="drain what is there and exit (default)")
    mode.add_argument("--follow", action="store_true", help="keep reading; report lag")
    consume.add_argument(
        "--max-seconds", type=float, default=None, help="--follow: stop after this long"
    )
    consume.add_argument("--buffer-seconds", type=float, default=None, help="flush age (2 s)")
    consume.add_argument("--buffer-records", type=int, default=None, help="flush size (20,000)")
    consume.add_argument("--buffer-mb", type=float, default=None, help="flush bytes (4 MB)")
    consume.add_argument("--consumer-id", default=None, help="lease owner name (default host:pid)")
    consume.add_argument(
        "--max-outage-seconds",
        type=float,
        default=None,
        help="--once: give up when the cloud stays unreachable this long (300); --follow waits "
        "for it however long it takes",
    )
    consume.set_defaults(func=consume_cmd)


def produce_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.producer import ProducerError, RateLimit
    from ingestion.tasks import SourceError, build_source, run_producer

    rate = None
    if args.rate_limit or args.rate_records or args.rate_bytes:
        with user_errors(ValueError):
            rate = RateLimit(
                records_per_second=args.rate_records or 1000.0,
                bytes_per_second=args.rate_bytes or 1_000_000.0,
            )
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit {args.limit} must be at least 1")
    with _command_errors(settings, "producing", SourceError, ProducerError):
        source = build_source(
            args.source,
            accounts=args.accounts,
            months=args.months,
            seed=args.seed,
            start=args.start,
            path=args.path,
            mapping=args.mapping,
        )
        report, oracle_uri = run_producer(
            settings, source, rate_limit=rate, progress=not args.no_progress, limit=args.limit
        )
    summary = report.summary()
    print(
        f"{'interrupted: ' if report.interrupted else ''}sent {report.sent:,} events to "
        f"{settings.stream_name} in {report.seconds:.1f}s ({report.records_per_second:,.0f}/s); "
        f"retried {report.retried:,}, failed {len(report.failed):,}, "
        f"rejected {len(report.rejected):,}, unsent {report.unsent:,}"
    )
    if oracle_uri:
        print(f"true PD per account (never in the stream): {oracle_uri}")
    for item in [*report.failed, *report.rejected][:10]:
        print(f"  not sent: {json.dumps(item.as_dict())}")
    if summary["reasons"]:
        print(f"  reasons: {summary['reasons']}")
    if summary["nulled_fields"]:
        print(
            f"  {summary['nulled_fields']:,} fields out of their range or type were sent as null "
            f"(each row kept): {summary['nulled_reasons']}"
        )
        for note in report.nulled[:10]:
            print(f"  nulled: {json.dumps(note.as_dict())}")
    if args.report:
        full = {
            **summary,
            "failed_records": [f.as_dict() for f in report.failed],
            "rejected_records": [r.as_dict() for r in report.rejected],
            "nulled_fields_records": [n.as_dict() for n in report.nulled],
        }
        args.report.write_text(json.dumps(full, indent=2))
        print(f"full report: {args.report}")
    if report.interrupted:
        return 130
    return 1 if report.failed else 0


def consume_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from ingestion.consumer import (
        CloudUnreachableError,
        LandingConfig,
        LeaseHeldError,
        LeaseLostError,
        RetryPolicy,
    )
    from ingestion.tasks import land

    overrides: dict[str, Any] = {}
    if args.buffer_seconds is not None:
        overrides["buffer_seconds"] = args.buffer_seconds
    if args.buffer_records is not None:
        overrides["buffer_records"] = args.buffer_records
    if args.buffer_mb is not None:
        overrides["buffer_bytes"] = int(args.buffer_mb * 1024 * 1024)
    if args.max_outage_seconds is not None and args.follow:
        raise CommandError("--max-outage-seconds goes with --once: --follow never gives up")
    with user_errors(ValueError):
        if args.max_outage_seconds is not None:
            overrides["retry"] = RetryPolicy(max_outage_seconds=args.max_outage_seconds)
        config = LandingConfig(**overrides)
    if args.max_seconds is not None and not args.follow:
        raise CommandError("--max-seconds goes with --follow")
    # SIGTERM (a service manager, `kill`) stops as Ctrl-C does: flush, checkpoint, release leases.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        summary = land(
            settings,
            follow=args.follow,
            max_seconds=args.max_seconds,
            config=config,
            owner=args.consumer_id,
        )
    except (LeaseHeldError, LeaseLostError) as exc:
        raise CommandError(str(exc)) from None
    except CloudUnreachableError as exc:
        raise CommandError(
            f"the cloud at {settings.endpoint_url} stayed unreachable: {exc} Is it up?"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            raise CommandError(
                f"stream or checkpoint table missing ({exc}); run `riskstream provision`"
            ) from None
        raise CommandError(f"landing failed: {exc}") from None
    except BotoCoreError as exc:
        raise CommandError(
            f"cannot talk to the cloud at {settings.endpoint_url}: {exc}; is it up?"
        ) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    print(
        f"{'interrupted: ' if summary['interrupted'] else ''}read {summary['records']:,} records "
        f"from {summary['shards']} shards in {summary['seconds']:.1f}s: landed "
        f"{summary['landed']:,} in {summary['objects']:,} objects under {summary['raw_uri']}, "
        f"quarantined {summary['quarantined']:,}"
    )
    if summary["quarantine_reasons"]:
        print(
            f"  quarantine reasons: {summary['quarantine_reasons']} ({summary['quarantine_uri']})"
        )
    print(f"  lag (ms behind latest): {summary['lag_ms']}")
    if summary["retries"]:
        print(
            f"  retried {summary['retries']:,} cloud calls ({summary['throttled']:,} throttled); "
            f"{summary['outages']} outages, {summary['outage_seconds']:.1f}s unreachable"
        )
    return 130 if summary["interrupted"] else 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# what each command needs provisioned: (the error codes of a missing resource, how to say it),
# and how to say that the cloud is down
_NEEDS = {
    "producing": (
        ("NoSuchBucket", "ResourceNotFoundException"),
        "a bucket or the stream is missing",
        "is it up (`riskstream cloud up`)?",
    ),
}


@contextmanager
def _command_errors(settings: Settings, doing: str, *plain: type[Exception]) -> Iterator[None]:
    """Failures said so the user can act: ``plain`` errors by their own message, a missing
    resource (provision it), any other refusal (``doing`` failed), a cloud not reachable."""
    from botocore.exceptions import BotoCoreError, ClientError

    missing, what_is_missing, is_it_up = _NEEDS[doing]
    try:
        yield
    except plain as exc:
        raise CommandError(str(exc)) from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in missing:
            raise CommandError(f"{what_is_missing} ({exc}); run `riskstream provision`") from None
        raise CommandError(f"{doing} failed: {exc}") from None
    except BotoCoreError as exc:
        raise CommandError(
            f"cannot talk to the cloud at {settings.endpoint_url}: {exc}; {is_it_up}"
        ) from None
