"""SQL for analysts: DuckDB over the Parquet tables the Glue catalog lists, read from S3.

:func:`ask_dashboard` sends the query to the dashboard's warm connection (``POST /api/sql``,
see :mod:`serving.warehouse`) and answers at once; :func:`run_sql` is the in-process path, used
when no dashboard of the same portfolio answers.

Every table in the catalog database (``scores``, ``features``, ``curated_*``, the risk tables
``vintage_*``, ``roll_rates_*``, ``delinquency_*``) becomes a DuckDB view over a pyarrow dataset
at the table's location, with its Hive partition keys as columns. The settings' portfolio's own
tables also answer to their bare names (``scores``, ``features``, ``scores_replaced``: the runs a
rerun of a score date replaced, with their ``replaced_at``; ``vintage``, ``roll_rates``
and ``delinquency`` are its risk tables' latest snapshot, ``as_of`` its month).
pyarrow's S3FileSystem reads the data (DuckDB's httpfs extension would need a download at run
time), and DuckDB pushes projections and filters into the dataset scan.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from riskstream import names as contract
from riskstream.clients import make_client
from riskstream.settings import Settings
from serving.storage import s3_filesystem

logger = logging.getLogger(__name__)

_ARROW_TYPES = {
    "date": pa.date32(),
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us"),
}


class SqlError(RuntimeError):
    """The query cannot run; the message says why and which tables exist."""


def catalog_tables(settings: Settings) -> list[dict[str, Any]]:
    """The catalog's tables: name, S3 location and partition keys."""
    glue = make_client(settings, "glue")
    out = []
    try:
        pages = glue.get_paginator("get_tables").paginate(DatabaseName=settings.glue_database)
        for page in pages:
            for table in page.get("TableList", []):
                location = table.get("StorageDescriptor", {}).get("Location", "")
                if location.startswith(("s3://", "s3a://")):
                    out.append(
                        {
                            "name": table["Name"],
                            "location": location,
                            "partition_keys": table.get("PartitionKeys", []),
                        }
                    )
    except glue.exceptions.EntityNotFoundException:
        raise SqlError(
            f"the Glue database {settings.glue_database!r} does not exist; "
            "run `riskstream provision` and the pipeline first"
        ) from None
    return out


def table_dataset(settings: Settings, table: dict[str, Any], filesystem: Any) -> ds.Dataset:
    path = table["location"].split("://", 1)[1].rstrip("/")
    keys = [
        (k["Name"], _ARROW_TYPES.get(k.get("Type", "string").lower(), pa.string()))
        for k in table["partition_keys"]
    ]
    files = ds.dataset(path, filesystem=filesystem, format="parquet", exclude_invalid_files=False)
    file_fields = set(files.schema.names)
    keys = [(name, typ) for name, typ in keys if name not in file_fields]
    if not keys:
        return files
    return ds.dataset(
        path,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(pa.schema(keys), flavor="hive"),
    )


def portfolio_tables(settings: Settings) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """The settings' portfolio's own tables: name -> (location, partition keys)."""
    day = {"Name": contract.SCORE_DATE, "Type": "date"}
    return {
        contract.scores_table(settings.portfolio): (contract.scores_location(settings), [day]),
        contract.features_table(settings.portfolio): (
            contract.features_location(settings),
            [{"Name": contract.OBS_DATE, "Type": "date"}],
        ),
        contract.replaced_scores_table(settings.portfolio): (
            contract.replaced_scores_location(settings),
            [day, {"Name": contract.REPLACED_AT, "Type": "string"}],
        ),
    }


def connect(settings: Settings, materialize: bool = False) -> tuple[Any, list[str]]:
    """A DuckDB connection with one view per catalog table; also the table names.

    The portfolio's own scores and features tables are read from their locations even when the
    catalog lacks them (features written before the ETL registered them). With ``materialize``
    those two are copied into DuckDB tables once, so a connection that stays open (the
    dashboard's) answers without reading S3 again until it is rebuilt.
    """
    import duckdb

    con = duckdb.connect()
    filesystem = s3_filesystem(settings)
    names = []
    tables = catalog_tables(settings)
    listed = {t["name"] for t in tables}
    for name, (location, keys) in portfolio_tables(settings).items():
        if name not in listed:
            tables.append({"name": name, "location": location, "partition_keys": keys})
    own = portfolio_tables(settings)
    for table in tables:
        try:
            dataset = table_dataset(settings, table, filesystem)
        except (OSError, pa.ArrowInvalid) as exc:
            if table["name"] in listed:
                logger.warning("skipping table %s at %s: %s", table["name"], table["location"], exc)
            continue
        if not dataset.schema.names:  # nothing written there yet
            continue
        con.register(f"_ds_{table['name']}", dataset)
        kind = "TABLE" if materialize and table["name"] in own else "VIEW"
        con.execute(f'CREATE {kind} "{table["name"]}" AS SELECT * FROM "_ds_{table["name"]}"')
        if kind == "TABLE":
            con.unregister(f"_ds_{table['name']}")
        names.append(table["name"])
    # ``scores`` and ``features`` mean the settings' portfolio's tables (each portfolio's own are
    # there as scores_<portfolio>, features_<portfolio>): one portfolio never reads as another's.
    for short, own_name in (
        (contract.SCORES_TABLE, contract.scores_table(settings.portfolio)),
        (contract.FEATURES_TABLE, contract.features_table(settings.portfolio)),
        (contract.REPLACED_SCORES_TABLE, contract.replaced_scores_table(settings.portfolio)),
    ):
        if own_name in names and short not in names:
            con.execute(f'CREATE VIEW "{short}" AS SELECT * FROM "{own_name}"')
            names.append(short)
    key = contract.AS_OF
    for short in contract.RISK_TABLES:
        own_name = contract.risk_table(short, settings.portfolio)
        if own_name in names and short not in names:
            con.execute(
                f'CREATE VIEW "{short}" AS SELECT * FROM "{own_name}" '
                f'WHERE "{key}" = (SELECT max("{key}") FROM "{own_name}")'
            )
            names.append(short)
    return con, names


def run_sql(settings: Settings, query: str) -> pd.DataFrame:
    """Run ``query`` over the catalog's tables and return the result."""
    import duckdb

    if not query.strip():
        raise SqlError("the query is empty; e.g. riskstream sql 'select count(*) from scores'")
    con, names = connect(settings)
    try:
        return con.execute(query).df()
    except duckdb.Error as exc:
        tables = ", ".join(sorted(names)) or "none (run the pipeline first)"
        raise SqlError(f"{exc}\ntables in {settings.glue_database}: {tables}") from None
    finally:
        con.close()


class DashboardUnavailable(RuntimeError):
    """No dashboard of this portfolio answered; the caller runs the query in-process."""


def ask_dashboard(
    settings: Settings, query: str, max_rows: int = 10_000, timeout: float = 30.0
) -> tuple[pd.DataFrame, bool]:
    """``query`` on the dashboard's warm connection: the rows (at most ``max_rows``) and whether
    there were more. :class:`DashboardUnavailable` when no dashboard of this portfolio and
    catalog answers; :class:`SqlError` when it refuses the query (the message says why)."""
    body = json.dumps({"query": query, "max_rows": max_rows}).encode()
    request = urllib.request.Request(
        settings.dashboard_url.rstrip("/") + "/api/sql",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", str(exc))
        except ValueError:
            detail = str(exc)
        if exc.code == 400:
            raise SqlError(detail) from None
        raise DashboardUnavailable(f"the dashboard answered {exc.code}: {detail}") from None
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        raise DashboardUnavailable(f"no dashboard at {settings.dashboard_url}: {exc}") from None
    if (answer.get("portfolio"), answer.get("database"), answer.get("cloud")) != (
        settings.portfolio,
        settings.glue_database,
        settings.endpoint_for("s3"),
    ):
        raise DashboardUnavailable(
            f"the dashboard at {settings.dashboard_url} serves portfolio "
            f"{answer.get('portfolio')!r}, not {settings.portfolio!r}"
        )
    frame = pd.DataFrame(answer["rows"], columns=answer["columns"])
    return frame, bool(answer.get("truncated"))
