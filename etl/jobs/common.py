"""Pieces the job scripts share: default locations, storage and bookmark wiring, arguments,
the start and end of a run over one portfolio, the run report beside the output, the catalog
registration and the spark-submit entry.

Entry/IO module.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from etl import layout
from etl.glue import BookmarkStore, GlueArgumentError, Job, get_resolved_options
from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import (
    CatalogTable,
    Storage,
    is_s3,
    join,
    register_partitions,
    register_table,
)

logger = logging.getLogger(__name__)


def default_locations(settings: Settings) -> dict[str, str]:
    """Where the layers live by default (docs/CONTRACTS.md)."""
    return {
        "raw": names.raw_events_location(settings) + "/",
        "curated": names.curated_location(settings) + "/",
        "quarantine": names.etl_quarantine_location(settings) + "/",
        "features": names.features_location(settings) + "/",
        "bookmarks": names.bookmarks_location(settings) + "/",
    }


def storage_for(settings: Settings, *uris: str) -> Storage:
    """A Storage with an S3 client when any of ``uris`` is on S3."""
    return Storage(make_client(settings, "s3") if any(is_s3(u) for u in uris) else None)


def bookmark_store(settings: Settings, storage: Storage, target: str) -> BookmarkStore:
    """Bookmarks in the cloud; next to the output only when the job writes to a local folder."""
    if is_s3(target):
        return BookmarkStore(storage, default_locations(settings)["bookmarks"])
    return BookmarkStore(storage, join(target, "_bookmarks"))


def job_options(job_name: str, overrides: Mapping[str, str], **values: str) -> dict[str, str]:
    """A job's arguments with their defaults: its name, today's run date (UTC) and bookmarks
    enabled, then ``values`` (the job's own), then the caller's ``overrides``."""
    out = {
        "JOB_NAME": job_name,
        "run_date": datetime.now(UTC).date().isoformat(),
        "job_bookmark_option": "job-bookmark-enable",
        **values,
    }
    out.update(overrides)
    return out


def portfolio_of(settings: Settings, args: Mapping[str, str]) -> tuple[str, Settings]:
    """The portfolio a job works on (``--portfolio``, else the settings') and its settings."""
    portfolio = args.get("portfolio") or settings.portfolio
    return portfolio, settings.for_portfolio(portfolio)


@dataclass
class PortfolioRun:
    """One run of a job over a portfolio's curated tables, as :func:`open_portfolio_run`
    started it: the job (bookmarks loaded), where it reads and writes, the tables' manifests."""

    job: Job
    settings: Settings
    storage: Storage
    portfolio: str
    source: str
    target: str
    run_date: date
    manifests: dict[str, Any]
    started: float

    def report(self, **more: Any) -> dict[str, Any]:
        """The run report: which job, run, date, portfolio, source and target, then ``more``."""
        return {
            "job": self.job.name,
            "run_id": self.job.run_id,
            "run_date": self.run_date.isoformat(),
            "portfolio": self.portfolio,
            "source": self.source,
            "target": self.target,
            **more,
        }

    def finish(self, report: dict[str, Any], built: Sequence[str]) -> None:
        """Time the run, keep its report beside the output, bookmark the partitions ``built``
        under the portfolio (with the run date) and commit the bookmarks."""
        report["seconds"] = elapsed(self.started)
        save_report(self.storage, self.target, report)
        self.job.mark(self.portfolio, {p: self.run_date.isoformat() for p in built})
        self.job.commit()


def open_portfolio_run(
    settings: Settings, args: Mapping[str, str], tables: Sequence[str]
) -> PortfolioRun:
    """Start a run over one portfolio (``--portfolio``) from ``--source`` to ``--target``: its
    settings and storage, the job initialised with its bookmarks, the curated ``tables``'
    committed manifests."""
    started = time.perf_counter()
    portfolio, settings = portfolio_of(settings, args)
    source, target = args["source"], args["target"]
    run_date = parse_date("run_date", args.get("run_date", ""))
    storage = storage_for(settings, source, target)
    job = Job(bookmark_store(settings, storage, target)).init(args["JOB_NAME"], args)
    manifests = {
        t: layout.load_manifest(storage, join(source, t), layout.table_key(t)) for t in tables
    }
    return PortfolioRun(
        job, settings, storage, portfolio, source, target, run_date, manifests, started
    )


def parse_date(name: str, value: str) -> date:
    """``YYYY-MM-DD`` (or ``today``) -> date, with an error naming the argument."""
    if value in ("", "today"):
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GlueArgumentError(f"--{name} {value!r} is not a date (YYYY-MM-DD)") from None


def parse_flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise GlueArgumentError(f"--{name} {value!r} must be true or false")


def elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def save_report(storage: Storage, target: str, report: dict[str, Any]) -> None:
    """Keep a job's run report beside its output (``<target>/_runs/<job>/<run id>.json``) and
    name it in the report (``report_uri``)."""
    uri = join(target, "_runs", report["job"], f"{report['run_id']}.json")
    storage.put_json(uri, report)
    report["report_uri"] = uri
    logger.info("%s: run report saved to %s", report["job"], uri)


def register_partitioned(
    settings: Settings,
    table: str,
    location: str,
    schema: Any,
    key: str,
    values: list[str],
    description: str,
) -> None:
    """Create or update a catalog table and its partitions ``key=value`` (idempotent)."""
    glue = make_client(settings, "glue")
    catalog_table = CatalogTable(
        settings.glue_database, table, location, schema, key, description=description
    )
    register_table(glue, catalog_table)
    register_partitions(glue, catalog_table, values)


def submit(
    argv: Sequence[str] | None,
    options: Callable[[Settings], dict[str, str]],
    run: Callable[[Any, Settings, Mapping[str, str]], dict[str, Any]],
) -> dict[str, Any]:
    """A job's spark-submit entry: settings from the environment, arguments from ``argv``
    (``sys.argv`` by default; only JOB_NAME is required, ``options`` gives the rest's defaults),
    one ``run``; its report is returned."""
    from etl.spark import build_spark
    from riskstream.logs import configure_logging

    configure_logging()
    settings = Settings.from_env()
    args = get_resolved_options(
        list(sys.argv if argv is None else argv), ("JOB_NAME",), options(settings)
    )
    spark = build_spark(settings, args["JOB_NAME"])
    return run(spark, settings, args)
