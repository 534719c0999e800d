"""Serving's datasets: read feature partitions, write score partitions and PSI reports, keep the
scores table in the catalog. Built on :mod:`riskstream.storage` (the one storage module).

Parquet goes through pyarrow's S3FileSystem pointed at the configured endpoint (moto, LocalStack
or AWS); listing, deleting and the catalog go through boto3 clients from the factory.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pyarrow as pa

from riskstream import names
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import (
    CatalogTable,
    Storage,
    arrow_s3_filesystem,
    read_parquet,
    register_partitions,
    register_table,
    write_parquet,
)

logger = logging.getLogger(__name__)


def s3_filesystem(settings: Settings) -> Any:
    """A pyarrow S3FileSystem for the configured cloud."""
    return arrow_s3_filesystem(
        settings.region,
        settings.endpoint_for("s3"),
        settings.aws_access_key_id,
        settings.aws_secret_access_key,
    )


def _storage(settings: Settings) -> Storage:
    return Storage(make_client(settings, "s3"))


def features_uri(settings: Settings, obs_date: dt.date | None = None) -> str:
    """This portfolio's feature table, or one observation date of it."""
    return names.features_location(settings, obs_date)


def scores_uri(settings: Settings, score_date: dt.date | None = None) -> str:
    """This portfolio's scores, or one score date of them."""
    return names.scores_location(settings, score_date)


def monitoring_uri(settings: Settings, score_date: dt.date) -> str:
    return names.monitoring_location(settings, score_date)


def feature_partitions(settings: Settings) -> list[dt.date]:
    return _storage(settings).partition_dates(features_uri(settings), names.OBS_DATE)


def score_partitions(settings: Settings) -> list[dt.date]:
    return _storage(settings).partition_dates(scores_uri(settings), names.SCORE_DATE)


def read_features(settings: Settings, obs_date: dt.date) -> pa.Table:
    return read_parquet(
        _storage(settings), s3_filesystem(settings), features_uri(settings, obs_date)
    )


def read_scores(settings: Settings, score_date: dt.date) -> pa.Table:
    return read_parquet(
        _storage(settings), s3_filesystem(settings), scores_uri(settings, score_date)
    )


def write_scores(
    settings: Settings, table: pa.Table, score_date: dt.date, now: dt.datetime | None = None
) -> str:
    """Replace the ``score_date`` partition with ``table``; return its S3 URI.

    The run it replaces is kept first under ``names.replaced_scores_location`` (stamped with
    ``now``), so the migration between two runs of one date stays readable; only the newest
    ``names.REPLACED_RUNS_KEPT`` replaced runs of a date are kept."""
    store, filesystem = _storage(settings), s3_filesystem(settings)
    uri = scores_uri(settings, score_date)
    if store.list_objects(uri, suffix=".parquet"):
        stamp = names.replaced_at_stamp(now or dt.datetime.now(dt.UTC))
        kept = names.replaced_scores_location(settings, score_date, stamp)
        write_parquet(store, filesystem, read_parquet(store, filesystem, uri), kept)
        logger.info("the run of %s it replaces is kept at %s", score_date, kept)
        for old in replaced_runs(settings, score_date)[: -names.REPLACED_RUNS_KEPT]:
            store.delete_prefix(names.replaced_scores_location(settings, score_date, old))
    return write_parquet(store, filesystem, table, uri)


def replaced_runs(settings: Settings, score_date: dt.date) -> list[str]:
    """The kept replaced runs of a score date (their ``replaced_at`` stamps), oldest first."""
    base = names.replaced_scores_location(settings, score_date)
    return sorted(_storage(settings).list_partitions(base, names.REPLACED_AT))


def write_monitoring(settings: Settings, score_date: dt.date, report: dict[str, Any]) -> str:
    """Store one PSI report beside the scores it describes; return its URI."""
    return _storage(settings).put_json(monitoring_uri(settings, score_date), report)


def read_monitoring(settings: Settings) -> list[dict[str, Any]]:
    """Every stored PSI report, oldest first."""
    storage = _storage(settings)
    base = names.monitoring_location(settings)
    out = []
    for day in storage.partition_dates(base, names.SCORE_DATE):
        report = storage.get_json(monitoring_uri(settings, day))
        if report is not None:
            out.append(report)
    return out


def register_scores_partition(settings: Settings, schema: pa.Schema, score_date: dt.date) -> None:
    """Create or update the ``scores`` table and its ``score_date`` partition (idempotent)."""
    glue = make_client(settings, "glue")
    location = scores_uri(settings)
    table = CatalogTable(
        settings.glue_database,
        names.scores_table(settings.portfolio),
        location,
        schema,
        names.SCORE_DATE,
        "risk scores per account and score date",
        partition_type="date",
    )
    register_table(glue, table)
    register_partitions(glue, table, [score_date.isoformat()], replace=True)
