"""The dashboard's warm DuckDB connection: catalog views registered once, the portfolio's scores
and features held in memory, rebuilt when a partition changes.

``riskstream sql`` took seconds because every call listed the catalog, opened S3 datasets and
read the Parquet again. The dashboard keeps one :class:`Warehouse` instead: a query runs on the
open connection, and a cheap fingerprint (the catalog's tables and the object listing of the
portfolio's scores, features and PSI reports) is checked at most every ``check_seconds``; when
it changes the connection is rebuilt off to the side and swapped in.

Queries from outside (``POST /api/sql``) are read-only: exactly one SELECT (or WITH ... SELECT)
statement, on a connection whose external access (files, network) is switched off and locked.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from riskstream import names as contract
from riskstream.clients import make_client
from riskstream.settings import Settings
from riskstream.storage import Storage
from serving import sql as sqlmod
from serving import storage

logger = logging.getLogger(__name__)


class ReadOnlyError(ValueError):
    """The statement is not a single SELECT; the message says what was refused."""


def check_read_only(con: Any, query: str) -> None:
    """Refuse anything but one SELECT / WITH ... SELECT statement."""
    import duckdb

    if not query.strip():
        raise ReadOnlyError("the query is empty; send one SELECT statement")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise ReadOnlyError(f"cannot parse the query: {exc}") from None
    if len(statements) != 1:
        raise ReadOnlyError(f"send exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise ReadOnlyError(f"only SELECT (or WITH ... SELECT) is allowed here, got {kind.name}")


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


class Warehouse:
    """One warm DuckDB connection over the settings' portfolio (thread-safe: one query at a
    time, which is what a 2-core dashboard wants)."""

    def __init__(
        self,
        settings: Settings,
        check_seconds: float = 2.0,
        connect: Callable[[Settings], tuple[Any, list[str]]] | None = None,
        fingerprint: Callable[[], tuple[Any, ...]] | None = None,
        load_reports: Callable[[Settings], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``connect``, ``fingerprint`` and ``load_reports`` default to the cloud's catalog, S3
        listing and PSI reports; tests hand in local ones."""
        self.settings = settings
        self.check_seconds = check_seconds
        self._connect = connect or (lambda s: sqlmod.connect(s, materialize=True))
        self._fingerprint_fn = fingerprint or self.fingerprint
        self._load_reports = load_reports or storage.read_monitoring
        self._lock = threading.RLock()
        self._con: Any = None
        self.tables: list[str] = []
        self._fingerprint: tuple[Any, ...] | None = None
        self._checked = 0.0
        self.builds = 0
        self._reports: list[dict[str, Any]] = []

    # ---- freshness -------------------------------------------------------------------------
    def fingerprint(self) -> tuple[Any, ...]:
        """What the connection was built from: catalog tables and the portfolio's objects."""
        s3 = Storage(make_client(self.settings, "s3"))
        objects = []
        for location in (
            contract.scores_location(self.settings),
            contract.features_location(self.settings),
            contract.monitoring_location(self.settings),
            contract.replaced_scores_location(self.settings),
        ):
            try:
                listed = s3.list_objects(location)
            except Exception as exc:  # a missing bucket reads as "nothing there yet"
                logger.debug("cannot list %s: %s", location, exc)
                listed = []
            objects.append(tuple((o["Key"], o["Size"], o.get("ETag", "")) for o in listed))
        try:
            catalog = tuple(
                (t["name"], t["location"]) for t in sqlmod.catalog_tables(self.settings)
            )
        except sqlmod.SqlError:
            catalog = ()
        return (catalog, *objects)

    def _build(self) -> None:
        con, tables = self._connect(self.settings)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        reports = self._load_reports(self.settings)
        old = self._con
        self._con, self.tables, self._reports = con, tables, reports
        self.builds += 1
        if old is not None:
            old.close()
        logger.info("warehouse built with tables: %s", ", ".join(tables) or "none")

    def refresh(self, force: bool = False) -> None:
        """Rebuild the connection if a partition or a catalog table changed since the build."""
        with self._lock:
            now = time.monotonic()
            if not force and self._con is not None and now - self._checked < self.check_seconds:
                return
            current = self._fingerprint_fn()
            self._checked = now
            if force or self._con is None or current != self._fingerprint:
                self._build()
                self._fingerprint = current

    # ---- queries ---------------------------------------------------------------------------
    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(connection, *args, **kwargs)`` on the fresh warm connection."""
        with self._lock:
            self.refresh()
            # the connection itself, not a cursor: a cursor does not see the Arrow datasets
            # registered on its parent, which the catalog's views read
            return fn(self._con, *args, **kwargs)

    def reports(self) -> list[dict[str, Any]]:
        """The PSI reports read with the current build."""
        with self._lock:
            self.refresh()
            return list(self._reports)

    def has(self, table: str) -> bool:
        with self._lock:
            self.refresh()
            return table in self.tables

    def query(self, query: str, max_rows: int | None = None) -> tuple[list[str], list[tuple]]:
        """A read-only query's columns and rows (at most ``max_rows``)."""
        import duckdb

        def go(con: Any) -> tuple[list[str], list[tuple]]:
            check_read_only(con, query)
            try:
                result = con.execute(query)
                columns = [d[0] for d in result.description]
                rows = result.fetchall() if max_rows is None else result.fetchmany(max_rows)
            except duckdb.Error as exc:
                tables = ", ".join(sorted(self.tables)) or "none (run the pipeline first)"
                raise sqlmod.SqlError(
                    f"{exc}\ntables in {self.settings.glue_database}: {tables}"
                ) from None
            return columns, rows

        return self.run(go)  # type: ignore[no-any-return]
