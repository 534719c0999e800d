"""The online feature table: each account's latest features in DynamoDB, for scoring by id.

:func:`materialize` (the pattern of Feast's ``materialize``) reads the offline feature table
(``s3://{prefix}-features/features/obs_date=.../``) with pyarrow, keeps each account's row at its
latest ``obs_date``, and writes one item per account to ``{prefix}-online-features`` with
``batch_write_item``: ``account_id`` (the key), ``obs_date`` (ISO date) and ``features`` (the
row's columns as one JSON object, the outcome ``label`` left out). A marker item under
:data:`META_KEY` records when and from which partitions the table was last materialized.

:class:`OnlineStore` is the API's reader. It keeps an in-memory replica of the table, refreshed
off the request path whenever the marker changes (a full scan, at most ``replica_limit`` items),
and falls back to ``get_item`` for an id the replica does not hold, so an account materialized
after the last refresh is still found.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from riskstream.clients import make_client
from riskstream.settings import Settings
from serving import storage

logger = logging.getLogger(__name__)

ONLINE_KEY = "account_id"
# The marker's key is longer than the event contract allows an account_id (64 characters), so it
# can never be an account.
META_KEY = "#riskstream-online-features-materialization-marker-not-an-account-id"
# The live scorer (serving.live) keeps each account's live state and score in the same table under
# the account id followed by this suffix: longer than an account_id may be, so never one, and
# never overwritten by a materialization. Its own status item is LIVE_META_KEY.
LIVE_SUFFIX = "#live-state-of-this-account-kept-by-the-live-scorer-never-an-account-id"
LIVE_META_KEY = "#riskstream-live-scorer-status-marker-not-an-account-id-and-never-one-either"
LIVE_CHECK_SECONDS = 2.0
LEFT_OUT = ("label",)  # the outcome is not a feature
BATCH = 25  # DynamoDB's batch_write_item limit
DEFAULT_REPLICA_LIMIT = 500_000


def online_table(settings: Settings) -> str:
    return settings.online_table


def live_key(account_id: str) -> str:
    """The key of an account's live item (state, features and score)."""
    return account_id + LIVE_SUFFIX


def is_account_key(key: str) -> bool:
    """An account's materialized item (not a marker, not a live item)."""
    return key not in (META_KEY, LIVE_META_KEY) and not key.endswith(LIVE_SUFFIX)


def latest_per_account(frame: pd.DataFrame) -> pd.DataFrame:
    """Each account's row at its latest ``obs_date`` (pure)."""
    if frame.empty:
        return frame
    ordered = frame.sort_values(["account_id", "obs_date"], kind="stable")
    return ordered.drop_duplicates("account_id", keep="last").reset_index(drop=True)


def to_items(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """One DynamoDB item per row (pure): key, ``obs_date`` and the features as JSON."""
    keep = [c for c in frame.columns if c not in (ONLINE_KEY, "obs_date", *LEFT_OUT)]
    obs = pd.to_datetime(frame["obs_date"]).dt.date.astype(str).tolist()
    ids = frame[ONLINE_KEY].astype(str).tolist()
    for i, row in enumerate(frame[keep].to_dict("records")):
        yield {
            ONLINE_KEY: {"S": ids[i]},
            "obs_date": {"S": obs[i]},
            "features": {"S": encode(row).decode()},
        }


def encode(row: dict[str, Any]) -> bytes:
    """Feature row -> JSON; NaN becomes null (read back as missing)."""
    return orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY, default=str)


def decode(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item -> the feature dict (``obs_date`` included, as an ISO string)."""
    features: dict[str, Any] = orjson.loads(item["features"]["S"])
    features["obs_date"] = item["obs_date"]["S"]
    return features


def read_offline(settings: Settings) -> pd.DataFrame:
    """Every feature partition, concatenated (obs_date as a date column)."""
    tables = []
    for day in storage.feature_partitions(settings):
        table = storage.read_features(settings, day)
        if "obs_date" not in table.column_names:
            table = table.append_column("obs_date", pa.array([day] * table.num_rows, pa.date32()))
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=[ONLINE_KEY, "obs_date"])
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def materialize(settings: Settings, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """Write each account's latest features to the online table; return a small report."""
    started = time.perf_counter()
    offline = read_offline(settings) if frame is None else frame
    if ONLINE_KEY not in offline.columns or offline.empty:
        logger.warning("no feature rows to materialize into %s", online_table(settings))
        return {"table": online_table(settings), "accounts": 0, "seconds": 0.0}
    latest = latest_per_account(offline)
    client = make_client(settings, "dynamodb")
    table = online_table(settings)
    from infra.provision import ensure_checkpoint_table

    ensure_checkpoint_table(client, table, True, ONLINE_KEY)  # provisioned before it existed
    written = 0
    batch: list[dict[str, Any]] = []
    for item in to_items(latest):
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == BATCH:
            written += _write(client, table, batch)
            batch = []
    if batch:
        written += _write(client, table, batch)
    dates = sorted({str(d)[:10] for d in latest["obs_date"]})
    meta = {
        ONLINE_KEY: {"S": META_KEY},
        "obs_date": {"S": dates[-1]},
        "materialized_at": {"S": dt.datetime.now(dt.UTC).isoformat()},
        "accounts": {"N": str(written)},
    }
    client.put_item(TableName=table, Item=meta)
    report = {
        "table": table,
        "accounts": written,
        "latest_obs_date": dates[-1],
        "seconds": round(time.perf_counter() - started, 3),
    }
    logger.info("materialized %d accounts into %s in %.1fs", written, table, report["seconds"])
    return report


def _write(client: Any, table: str, batch: list[dict[str, Any]], attempts: int = 8) -> int:
    pending: dict[str, list[dict[str, Any]]] = {table: batch}
    for attempt in range(attempts):
        response = client.batch_write_item(RequestItems=pending)
        pending = response.get("UnprocessedItems") or {}
        if not pending:
            return len(batch)
        time.sleep(min(0.05 * 2**attempt, 2.0))
    left = len(pending.get(table, []))
    raise RuntimeError(f"DynamoDB {table}: {left} items still unprocessed after {attempts} tries")


class OnlineStore:
    """The API's view of the online table: an in-memory replica plus ``get_item`` on a miss."""

    def __init__(
        self,
        settings: Settings,
        client: Any | None = None,
        replica_limit: int = DEFAULT_REPLICA_LIMIT,
    ) -> None:
        self.table = online_table(settings)
        self._settings = settings
        self._client = client
        self.replica_limit = replica_limit
        self.replica: dict[str, dict[str, Any]] = {}
        self.version: str | None = None
        self.last_error: str | None = None
        self.live = False  # a live scorer writes this table: read each account's live item
        self.live_checked_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self._settings, "dynamodb")
        return self._client

    def sync(self) -> bool:
        """Reload the replica when the materialization marker changed; True if it did. Also
        notes whether a live scorer writes the table (its status marker)."""
        with self._lock:
            try:
                self._check_live()
                meta = self.client.get_item(
                    TableName=self.table, Key={ONLINE_KEY: {"S": META_KEY}}
                ).get("Item")
            except Exception as exc:  # no table yet, or the cloud is down: keep what we have
                self.last_error = f"{type(exc).__name__}: {exc}"
                return False
            version = meta["materialized_at"]["S"] if meta else None
            if version is None or version == self.version:
                return False
            count = int(meta["accounts"]["N"]) if meta else 0
            if count > self.replica_limit:
                self.replica, self.version = {}, version  # too big to hold: get_item only
                return True
            replica: dict[str, dict[str, Any]] = {}
            for page in self.client.get_paginator("scan").paginate(TableName=self.table):
                for item in page.get("Items", []):
                    key = item[ONLINE_KEY]["S"]
                    if is_account_key(key):
                        replica[key] = decode(item)
            self.replica, self.version, self.last_error = replica, version, None
            logger.info("online replica: %d accounts (materialized %s)", len(replica), version)
            return True

    def _check_live(self) -> bool:
        self.live = "Item" in self.client.get_item(
            TableName=self.table, Key={ONLINE_KEY: {"S": LIVE_META_KEY}}
        )
        self.live_checked_at = time.monotonic()
        return self.live

    def live_now(self) -> bool:
        """Whether a live scorer writes the table, asked of the table at most every
        :data:`LIVE_CHECK_SECONDS` (so a live scorer started after the API is seen at once)."""
        if time.monotonic() - self.live_checked_at < LIVE_CHECK_SECONDS:
            return self.live
        try:
            return self._check_live()
        except Exception as exc:  # the cloud is down: keep what we knew
            self.last_error = f"{type(exc).__name__}: {exc}"
            return self.live

    def fetch_live(self, account_id: str) -> dict[str, Any] | None:
        """The account's live item (its score as the live scorer left it), or None."""
        item = self.client.get_item(
            TableName=self.table, Key={ONLINE_KEY: {"S": live_key(account_id)}}
        )
        found = item.get("Item")
        if found is None or "score" not in found:
            return None
        score: dict[str, Any] = orjson.loads(found["score"]["S"])
        if score.get("pd") is None:
            return None  # applied but not scored (no champion yet, outside the population)
        return {
            **score,
            "obs_date": found["obs_date"]["S"],
            "as_of": found["as_of"]["S"],
            "event_id": found["event_id"]["S"],
        }

    def fetch(self, account_id: str) -> dict[str, Any] | None:
        """``get_item`` for one account (blocking); caches a hit in the replica."""
        if not is_account_key(account_id):
            return None
        item = self.client.get_item(TableName=self.table, Key={ONLINE_KEY: {"S": account_id}})
        if "Item" not in item:
            return None
        features = decode(item["Item"])
        self.replica[account_id] = features
        return features
