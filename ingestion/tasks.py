"""Entry functions for the CLI and the Airflow DAG: each takes Settings first, returns a summary.

``produce(settings, source, **params)`` streams one source into the Kinesis stream (and, for the
synthetic source, writes the true-PD oracle beside the stream); ``land(settings)`` drains the
stream into the raw bucket once.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.consumer import Consumer, LandingConfig, LandingReport
from ingestion.csv_replay import FieldNulled, RowError
from ingestion.producer import Producer, ProduceReport, RateLimit
from riskstream import names
from riskstream.clients import make_client
from riskstream.errors import ConfigurationError
from riskstream.progress import Progress
from riskstream.settings import Settings
from riskstream.storage import split_s3

logger = logging.getLogger(__name__)

SOURCES = names.SOURCES
# `make run` default: about a minute to produce and land on the embedded cloud.
DEFAULT_ACCOUNTS = names.DEFAULT_ACCOUNTS
DEFAULT_MONTHS = names.DEFAULT_MONTHS
DEFAULT_SEED = names.DEFAULT_SEED


class SourceError(ConfigurationError):
    """Bad source parameters; the message names the parameter, the value and the fix."""


@dataclass
class Source:
    """Events to send, how many (when known) and, for synthetic, the oracle frame."""

    name: str
    events: Iterable[Mapping[str, Any] | RowError | FieldNulled]
    total: int | None
    oracle: pd.DataFrame | None = None
    portfolio: str = ""  # the portfolio its events belong to (their envelope's ``source``)
    windows: dict[str, Any] | None = None  # a mapping's observation date and windows


def portfolio_for(
    source: str,
    *,
    portfolio: str | None = None,
    path: str | Path | None = None,
    mapping: str | Path | Mapping[str, Any] | None = None,
) -> str:
    """The portfolio a run of ``source`` belongs to, without reading the data: the name given,
    else the source's own (synthetic, taiwan), else the CSV mapping's or the file's name."""
    if source not in SOURCES:
        raise SourceError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if source != names.SOURCE_CSV:
        default = names.default_portfolio(source)
        if portfolio and portfolio != default:
            raise SourceError(
                f"--portfolio {portfolio!r}: the {source} source's events are the {default!r} "
                f"portfolio (their ids are the same whatever the name); leave --portfolio out"
            )
        return default
    if portfolio:
        return portfolio
    if path is None or mapping is None:
        raise SourceError("--source csv needs --path (CSV or Parquet) and --mapping (JSON)")
    from ingestion import csv_replay

    try:
        return csv_replay.portfolio_name(_column_map(mapping), path)
    except csv_replay.MappingError as exc:
        raise SourceError(str(exc)) from None


def mapping_windows(mapping: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A CSV mapping's observation date and windows (``ColumnMapping.windows``)."""
    from ingestion import csv_replay

    try:
        return dict(_column_map(mapping).windows())
    except csv_replay.MappingError as exc:
        raise SourceError(str(exc)) from None


def _column_map(mapping: str | Path | Mapping[str, Any]) -> Any:
    from ingestion import csv_replay

    if isinstance(mapping, Mapping):
        return csv_replay.parse_mapping(mapping)
    return csv_replay.load_mapping(mapping)


def build_source(
    source: str,
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    months: int = DEFAULT_MONTHS,
    seed: int = DEFAULT_SEED,
    start: str | date | None = None,
    path: str | Path | None = None,
    mapping: str | Path | Mapping[str, Any] | None = None,
    portfolio: str | None = None,
) -> Source:
    """Turn CLI/DAG parameters into a :class:`Source` (no I/O except reading the input file);
    ``portfolio`` names a CSV table's portfolio (default: the mapping's, else the file's name)."""
    name = portfolio_for(source, portfolio=portfolio, path=path, mapping=mapping)
    if source == names.SOURCE_SYNTHETIC:
        from ingestion.synthetic import SyntheticConfig, simulate

        kwargs: dict[str, Any] = {"accounts": accounts, "months": months, "seed": seed}
        if start is not None:
            kwargs["start"] = _month(start)
        try:
            portfolio = simulate(SyntheticConfig(**kwargs))
        except ValueError as exc:
            raise SourceError(str(exc)) from None
        return Source(source, portfolio.events(), portfolio.n_events, portfolio.oracle, name)
    if source == names.SOURCE_TAIWAN:
        from ingestion import taiwan

        try:
            frame = taiwan.load(path or taiwan.DEFAULT_PATH)
        except taiwan.TaiwanDataError as exc:
            raise SourceError(str(exc)) from None
        return Source(
            source, taiwan.frame_events(frame), len(frame) * taiwan.EVENTS_PER_CLIENT, None, name
        )
    if source == names.SOURCE_CSV:
        from ingestion import csv_replay

        if path is None or mapping is None:
            raise SourceError(
                "--source csv needs --path (CSV or Parquet) and --mapping (JSON); in the "
                "pipeline DAG's params they are csv_path and csv_mapping"
            )
        try:
            column_map = replace(_column_map(mapping), source=name)
            frame = csv_replay.load_frame(path)
            csv_replay.check_columns(frame, column_map)
        except csv_replay.MappingError as exc:
            raise SourceError(str(exc)) from None
        labelled = int(frame[column_map.label].notna().sum()) if column_map.label else 0
        return Source(
            source,
            csv_replay.frame_events(frame, column_map),
            len(frame) + labelled,
            None,
            name,
            column_map.windows(),
        )
    raise SourceError(f"source {source!r} is not one of {', '.join(SOURCES)}")


def _month(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value if len(value) > 7 else f"{value}-01")
    except ValueError:
        raise SourceError(f"start={value!r} is not YYYY-MM or YYYY-MM-DD") from None


def write_oracle(s3: Any, location: str, oracle: pd.DataFrame) -> str:
    """Write ``account_id, [obs_date,] true_pd, observed_date`` (and ``attainable_pd``, the
    ceiling from what the stream shows) as Parquet beside the stream; return its URI. A synthetic
    portfolio's oracle has a row per account and observation date (``obs_date``)."""
    table = pa.table(
        {
            "account_id": pa.array(oracle["account_id"].astype(str).tolist(), pa.string()),
            **(
                {names.OBS_DATE: pa.array(list(oracle[names.OBS_DATE]), pa.date32())}
                if names.OBS_DATE in oracle.columns
                else {}
            ),
            "true_pd": pa.array(oracle["true_pd"].astype(float).tolist(), pa.float64()),
            "observed_date": pa.array(list(oracle["observed_date"]), pa.date32()),
            **(
                {"attainable_pd": pa.array(oracle["attainable_pd"].astype(float).tolist())}
                if "attainable_pd" in oracle.columns
                else {}
            ),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    bucket, key = split_s3(location)
    s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
    return location


def run_producer(
    settings: Settings,
    source: Source,
    *,
    rate_limit: RateLimit | None = None,
    progress: bool = False,
    limit: int | None = None,
) -> tuple[ProduceReport, str | None]:
    """Send a built source; write its oracle first (if any), then let the source's frame go.
    Returns the report and the oracle's URI."""
    oracle_uri = None
    if source.oracle is not None:
        oracle_uri = write_oracle(
            make_client(settings, "s3"),
            names.oracle_location(settings, source.portfolio or None),
            source.oracle,
        )
        logger.info("true PD for %d accounts written to %s", len(source.oracle), oracle_uri)
        # Let it go before streaming: a large portfolio's oracle holds hundreds of megabytes.
        source.oracle = None
    events = source.events
    total = source.total
    if limit is not None:
        events = itertools.islice(events, limit)
        total = min(total, limit) if total is not None else limit
    producer = Producer(
        make_client(settings, "kinesis"),
        settings.stream_name,
        rate_limit=rate_limit,
        progress=progress,
        reporter=Progress.in_state_dir(settings.state_dir, "produce", total, "events"),
    )
    return producer.send(events, total=total), oracle_uri


def produce(settings: Settings, source: str, **params: Any) -> dict[str, Any]:
    """Stream one source into the stream; return the summary (sent, retried, failed, ...).

    ``params``: accounts, months, seed, start (synthetic); path, mapping (csv; path for taiwan);
    rate_limit (bool or RateLimit), limit (send only the first N events), progress (bool).
    """
    rate = params.pop("rate_limit", None)
    progress = bool(params.pop("progress", False))
    limit = params.pop("limit", None)
    built = build_source(source, **params)
    rate_limit = RateLimit() if rate is True else (rate or None)
    report, oracle_uri = run_producer(
        settings, built, rate_limit=rate_limit, progress=progress, limit=limit
    )
    summary = report.summary()
    summary["source"] = source
    summary["portfolio"] = built.portfolio
    if built.windows:
        summary["windows"] = built.windows
    summary["stream"] = settings.stream_name
    if oracle_uri:
        summary["oracle_uri"] = oracle_uri
    return summary


def make_consumer(
    settings: Settings, config: LandingConfig | None = None, owner: str | None = None
) -> Consumer:
    return Consumer(
        make_client(settings, "kinesis"),
        make_client(settings, "s3"),
        make_client(settings, "dynamodb"),
        stream_name=settings.stream_name,
        raw_bucket=settings.bucket("raw"),
        quarantine_bucket=settings.bucket("quarantine"),
        checkpoint_table=settings.checkpoint_table,
        owner=owner,
        config=config,
    )


def land(
    settings: Settings,
    follow: bool = False,
    max_seconds: float | None = None,
    config: LandingConfig | None = None,
    owner: str | None = None,
    expected: int | None = None,
) -> dict[str, Any]:
    """Drain the stream into the raw bucket (``follow`` keeps going); return the summary.
    ``expected``: about how many records there are to land (the progress's total), if known."""
    consumer = make_consumer(settings, config, owner)
    with Progress.in_state_dir(settings.state_dir, "land", expected, "records") as progress:
        consumer.progress = progress
        report: LandingReport = consumer.run(follow=follow, max_seconds=max_seconds)
    summary = report.summary()
    summary["raw_uri"] = names.raw_events_location(settings) + "/"
    summary["quarantine_uri"] = names.ingest_quarantine_location(settings) + "/"
    return summary
