"""`riskstream etl raw-to-curated|curated-to-features|risk-tables|compact`: run the Glue-style
jobs locally."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from riskstream.commands import CommandError, add_group
from riskstream.settings import Settings

CURATED = "curated base URI (default s3://<prefix>-curated/)"


def _job(etl: Any, name: str, func: Any, source: str, target: str, **about: str) -> Any:
    """A job's subcommand (``about``: its help and description) with the arguments every job
    takes: ``--run-date`` and the ``--source`` and ``--target`` base URIs (the help of each)."""
    parser = etl.add_parser(name, **about)
    parser.add_argument(
        "--run-date",
        default=datetime.now(UTC).date().isoformat(),
        help="YYYY-MM-DD (default today, UTC)",
    )
    parser.add_argument("--source", help=source)
    parser.add_argument("--target", help=target)
    parser.set_defaults(func=func)
    return parser


def register(subparsers: Any) -> None:
    etl = add_group(subparsers, "etl", "run the Glue-style Spark jobs (raw -> curated -> features)")

    r2c = _job(
        etl,
        "raw-to-curated",
        raw_to_curated_cmd,
        "raw base URI (default s3://<prefix>-raw/events/)",
        CURATED,
        help="curate raw partitions not processed yet (bookmarked in S3)",
        description="Parse, type, validate and de-duplicate raw events into curated Parquet "
        "tables; bad rows go to the quarantine table with a reason. Only raw partitions that are "
        "new or changed since the last run are read, unless --reset.",
    )
    r2c.add_argument("--reset", action="store_true", help="forget the bookmark; redo everything")
    r2c.add_argument(
        "--quarantine", help="quarantine base URI (default s3://<prefix>-quarantine/etl/)"
    )
    r2c.add_argument(
        "--no-bookmark", action="store_true", help="process every partition, keep no bookmark"
    )

    c2f = _job(
        etl,
        "curated-to-features",
        curated_to_features_cmd,
        CURATED,
        "features base URI (default s3://<prefix>-features/features/)",
        help="build one feature row per account and observation date",
        description="Features from events before each observation date; the label from outcomes "
        "in the performance window after it (null when unknown).",
    )
    c2f.add_argument(
        "--obs-dates",
        default="",
        help="comma-separated YYYY-MM-DD; default: derived from the data (Taiwan: 2005-10-01)",
    )
    c2f.add_argument(
        "--scoring", action="store_true", help="scoring features: observation date = run date"
    )
    c2f.add_argument("--lookback-months", type=int, default=6, help="feature window (default 6)")
    c2f.add_argument("--performance-months", type=int, default=1, help="label window (default 1)")

    _job(
        etl,
        "risk-tables",
        risk_tables_cmd,
        CURATED,
        "risk tables base URI (default s3://<prefix>-features/risk/<portfolio>/)",
        help="vintage, roll-rate and delinquency-bucket tables of the portfolio",
        description="Vintage curves (cumulative default rate by opening cohort and months on "
        "book), roll rates between delinquency buckets and bucket counts per month, from the "
        "portfolio's curated tables; one snapshot as of the last statement month, in the "
        "catalog (query them with `riskstream sql`: vintage, roll_rates, delinquency).",
    )

    compact = etl.add_parser(
        "compact",
        help="merge each curated partition's files into one (idempotent)",
        description="Rewrite every curated partition that holds several files as one file, "
        "committed as a new version (readers switch at once); partitions already in one file "
        "are left alone.",
    )
    compact.add_argument(
        "--table", action="append", help="a curated table (repeatable; default: all)"
    )
    compact.add_argument("--target", help=CURATED)
    compact.set_defaults(func=compact_cmd)


def _overrides(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, str]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None)}


def _run(module: Any, args: argparse.Namespace, settings: Settings, **extra: str) -> dict[str, Any]:
    from etl.glue import GlueArgumentError
    from etl.spark import SparkSetupError, build_spark

    options = module.options(settings, run_date=args.run_date, **extra)
    with _command_errors(
        settings,
        "`riskstream cloud up` and `riskstream provision`",
        (GlueArgumentError, SparkSetupError, ValueError),
        job=options["JOB_NAME"],
    ):
        spark = build_spark(settings, options["JOB_NAME"])
        report: dict[str, Any] = module.run(spark, settings, options)
    return report


def raw_to_curated_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from etl.jobs import raw_to_curated as job

    extra = _overrides(args, ("source", "target", "quarantine"))
    extra["reset"] = str(bool(args.reset)).lower()
    if args.no_bookmark:
        extra["job_bookmark_option"] = "job-bookmark-disable"
    report = _run(job, args, settings, **extra)
    _print(report)
    if not report["partitions_processed"]:
        print("nothing to do: no new or changed raw partitions (use --reset to redo them all)")
    else:
        print(
            f"{report['rows_in']} rows in = {report['rows_out_total']} out + "
            f"{report['quarantined_total']} quarantined + {report['duplicates_removed']} "
            f"duplicates, from {len(report['partitions_processed'])} partition(s)"
        )
    return 0


def curated_to_features_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from etl.jobs import curated_to_features as job

    extra = _overrides(args, ("source", "target", "obs_dates"))
    if args.scoring:
        extra["obs_dates"] = "run_date"
    extra["lookback_months"] = str(args.lookback_months)
    extra["performance_months"] = str(args.performance_months)
    report = _run(job, args, settings, **extra)
    _print(report)
    print(
        f"{report['rows_out']} feature rows for {', '.join(report['obs_dates'])}; labels "
        f"{report['labels']}"
    )
    return 0


def risk_tables_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from etl.jobs import curated_to_risk_tables as job

    report = _run(job, args, settings, **_overrides(args, ("source", "target")))
    _print(report)
    print(f"risk tables as of {report['as_of']}: {report['tables']}")
    return 0


def compact_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from etl import tasks
    from etl.session import SessionJobError
    from etl.spark import SparkSetupError

    with _command_errors(
        settings, "`riskstream cloud up`", (SparkSetupError, SessionJobError, ValueError)
    ):
        report = tasks.compact(settings, args.table, args.target)
    _print(report)
    print(f"{report['partitions_compacted']} partition(s) compacted")
    return 0


@contextmanager
def _command_errors(
    settings: Settings, start: str, plain: tuple[type[Exception], ...], job: str | None = None
) -> Iterator[None]:
    """Failures said so the user can act: a cloud not reachable (``start`` it), ``plain`` errors
    by their own message and, for a ``job``, any other cloud failure as the job's."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except EndpointConnectionError:
        raise CommandError(
            f"cannot reach the cloud at {settings.endpoint_url}; start it with {start}"
        ) from None
    except plain as exc:
        raise CommandError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        if job is None:
            raise
        raise CommandError(f"{job} failed talking to the cloud: {exc}") from None


def _print(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2, sort_keys=True, default=str))
