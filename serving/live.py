"""The live scorer: every event of the stream rescored into the online table within a second.

I/O module. A second consumer application of the events stream (``names.LIVE_APPLICATION``:
leases and checkpoints of its own in the checkpoint table, independent of landing), reading
every shard with the shared machinery of :mod:`infra.shards` (leases, checkpoints, retries with
backoff on connection errors, 5xx and throttling, cursors that survive a restart of the cloud).

Per GetRecords page of a shard:

1. group the records by account (order kept), load those accounts' states (the shard's cache,
   which lives as long as this scorer holds the shard's lease, else ``BatchGetItem``), apply
   each record (:class:`serving.livestate.AccountState`: skipped when its position is at or
   below the account's high-water mark for the shard, or its ``event_id`` was applied; an
   invalid record is counted and skipped, as landing quarantines it);
2. recompute the changed accounts' features (the raw form's builder, the pipeline's definitions)
   and score them with the champion's compiled scorer (:class:`serving.service.ChampionHolder`,
   which follows the ``champion`` alias: a new champion is used from the next page on, and the
   switch is logged and shown in the status);
3. put a versioned risk event on ``<prefix>-risk-events`` for each account whose tier or
   decision changed or whose PD moved by more than ``settings.risk_event_pd_delta`` (ids are
   derived from the account and the triggering event, so a replay repeats the same id);
4. write the states (``BatchWriteItem``, 25 accounts a request, several in flight; each account
   written once per page, whatever its number of events), then move the shard's checkpoint.

A crash anywhere replays the page from the checkpoint; the high-water marks make the replay
change nothing that was written (at-least-once delivery, idempotent apply: effectively once;
docs/adr/0006-live-scorer.md). Status (lag per shard, events per second, the champion) is served
as JSON at ``settings.live_url`` (``/health``, loopback only) and kept in the online table's
live marker item, which also tells the API to answer ``GET /accounts/{id}/score`` from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import orjson
import pandas as pd

from infra.shards import (
    SHARD_END,
    LeaseHeldError,
    LeaseLostError,
    ReaderConfig,
    ShardCursor,
    every_shard,
    open_application,
    ready_shards,
)
from riskstream import names
from riskstream.checks import require_positive
from riskstream.clients import make_client
from riskstream.events import EventValidationError, decode, validate
from riskstream.settings import Settings
from serving.live_status import RATE_WINDOW, RECENT_CHANGES
from serving.livestate import AccountState, etl_refusal, feature_rows, risk_change
from serving.online import LIVE_META_KEY, ONLINE_KEY, live_key
from serving.processes import host_port
from serving.rawfeatures import lookback_for
from serving.service import ChampionHolder, Loaded, score_records

logger = logging.getLogger(__name__)

WRITERS = 4  # BatchWriteItem requests in flight at once
BATCH_GET_MAX = 100  # BatchGetItem: at most 100 keys
BATCH_WRITE_MAX = 25  # BatchWriteItem: at most 25 items
PUT_RECORDS_MAX = 500  # Kinesis PutRecords: at most 500 records
RISK_NAMESPACE = uuid.UUID("3f6c1c1e-6a43-4b8e-9a51-0c7d2d1c9e55")


@dataclass(frozen=True)
class LiveConfig(ReaderConfig):
    """The live scorer's knobs beside the shard reader's (its retries never give up: a service).

    ``idle_sleep``: the wait between GetRecords calls at the tip of a shard (freshness is about
    this plus one page's work). ``owner``: the lease owner; the managed service uses one name
    per host and state directory, so a restarted scorer takes its own leases back at once.
    """

    idle_sleep: float = 0.1
    owner: str = ""
    champion_ttl: float = 5.0
    status_seconds: float = 2.0
    cache_accounts: int = 200_000
    gather_records: int = 50_000  # behind the tip: apply up to this many records at once
    gather_seconds: float = 2.0  # ... or what was read in this long

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(champion_ttl=self.champion_ttl)


@dataclass
class _Entry:
    """One account as loaded: its state, the item version it was read at, its last score."""

    state: AccountState
    version: int
    score: dict[str, Any] | None


@dataclass
class ShardProgress:
    lag_ms: int | None = None
    checkpoint: str | None = None
    events: int = 0


class LiveStatus:
    """Counters and the rate, shared by the shard threads (what ``live status`` prints)."""

    def __init__(self, application: str = names.LIVE_APPLICATION) -> None:
        self.lock = threading.Lock()
        self.application = application
        self.started_at = time.time()
        self.other_portfolios = 0
        self.shards: dict[str, ShardProgress] = {}
        self.events = 0
        self.applied = 0
        self.duplicates = 0
        self.invalid = 0
        self.scored = 0
        self.unscored = 0
        self.risk_events = 0
        self.champion_version: str | None = None
        self.champion_since: float | None = None
        self.switches: list[dict[str, Any]] = []
        self.last_error: str | None = None
        self._recent: deque[tuple[float, int]] = deque()
        # the latest risk events, newest last (the dashboard's live panel shows them)
        self.changes: deque[dict[str, Any]] = deque(maxlen=RECENT_CHANGES)

    def note_changes(self, events: list[dict[str, Any]]) -> None:
        """Keep the gist of emitted risk events for the status: account, when, what moved."""
        with self.lock:
            self.risk_events += len(events)
            for e in events:
                self.changes.append(
                    {
                        "account_id": e["account_id"],
                        "event_time": e["event_time"],
                        "changed": e["changed"],
                        "old_tier": e["old"].get("risk_tier"),
                        "new_tier": e["new"].get("risk_tier"),
                        "old_pd": e["old"].get("pd"),
                        "new_pd": e["new"].get("pd"),
                        "decision": e["new"].get("decision"),
                        "trigger_event_id": e["trigger_event_id"],
                    }
                )

    def count(self, shard_id: str, records: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.events += records
            self.shards.setdefault(shard_id, ShardProgress()).events += records
            self._recent.append((now, records))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW:
                self._recent.popleft()

    def rate(self) -> float:
        now = time.monotonic()
        with self.lock:
            recent = [n for t, n in self._recent if t >= now - RATE_WINDOW]
        return sum(recent) / RATE_WINDOW

    def snapshot(self) -> dict[str, Any]:
        rate = self.rate()
        with self.lock:
            return {
                "status": "ok",
                "application": self.application,
                "started_at": self.started_at,
                "events_per_second": round(rate, 1),
                "events": self.events,
                "applied": self.applied,
                "duplicates": self.duplicates,
                "invalid": self.invalid,
                "other_portfolios": self.other_portfolios,
                "scored": self.scored,
                "unscored": self.unscored,
                "risk_events": self.risk_events,
                "lag_ms": {s: p.lag_ms for s, p in sorted(self.shards.items())},
                "shards": {
                    s: {"lag_ms": p.lag_ms, "checkpoint": p.checkpoint, "events": p.events}
                    for s, p in sorted(self.shards.items())
                },
                "model": {
                    "version": self.champion_version,
                    "since": self.champion_since,
                    "switches": list(self.switches[-10:]),
                },
                "last_error": self.last_error,
                "recent_changes": list(reversed(self.changes)),  # newest first
            }


def default_owner(settings: Settings) -> str:
    """One lease owner per host and state directory (see :class:`LiveConfig`)."""
    digest = hashlib.sha256(str(settings.state_dir).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}:live:{digest}"


class LiveScorer:
    """Reads every shard of the events stream and keeps each account's live score."""

    def __init__(
        self,
        settings: Settings,
        config: LiveConfig | None = None,
        *,
        clients: dict[str, Any] | None = None,
        holder: ChampionHolder | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or LiveConfig()
        clients = clients or {}
        self.kinesis = clients.get("kinesis") or make_client(settings, "kinesis")
        self.dynamodb = clients.get("dynamodb") or make_client(settings, "dynamodb")
        self.table = settings.online_table
        self.stream_name = settings.stream_name
        self.risk_stream = settings.risk_stream_name
        self._stop = threading.Event()
        self._abort = threading.Event()
        self.owner = self.config.owner or default_owner(settings)
        self.retrier, self.store = open_application(
            self.kinesis,
            self.dynamodb,
            table=settings.checkpoint_table,
            stream_name=self.stream_name,
            owner=self.owner,
            lease_seconds=self.config.lease_seconds,
            application=names.live_application(settings.portfolio),
            policy=self.config.retry,
            stopping=self._stop,
            abort=self._abort,
        )
        self.holder = holder or ChampionHolder(settings, ttl=self.config.champion_ttl)
        self.status = LiveStatus(names.live_application(settings.portfolio))
        # per shard held: the states of its accounts (the lease makes this scorer their only
        # writer, so the table is only read for an account not seen since the lease was taken)
        self._caches: dict[str, OrderedDict[str, _Entry]] = {}
        self._renewed: dict[str, float] = {}  # per shard held: when its lease was last extended
        self._lease_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="live-write")
        self.ready = threading.Event()  # the champion checked and the shards being read

    # ---- the champion -----------------------------------------------------------------------
    def refresh_champion(self) -> bool:
        """Follow the ``champion`` alias; True when the scorer switched to another version."""
        before = self.holder.current.champion.version if self.holder.current else None
        changed = self.holder.refresh()
        current = self.holder.current
        if current is None:
            if self.holder.last_error:
                self.status.last_error = f"champion: {self.holder.last_error}"
            return False
        if not changed:
            return False
        now = time.time()
        with self.status.lock:
            self.status.champion_version = current.champion.version
            self.status.champion_since = now
            self.status.switches.append({"from": before, "to": current.champion.version, "at": now})
        if before is None:
            logger.info("live scorer: scoring with champion %s", current.champion)
        else:
            logger.warning(
                "live scorer: champion switched from v%s to v%s (%s); new events are scored "
                "with it",
                before,
                current.champion.version,
                current.champion.name,
            )
        return True

    def _champion_loop(self) -> None:
        while not self._stop.wait(self.config.champion_ttl):
            try:
                self.refresh_champion()
            except Exception as exc:  # keep the old champion
                logger.warning("champion check failed: %s", exc)

    # ---- running ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, follow: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
        """Read every shard until :meth:`stop` (``follow``) or until caught up (a drain, for
        tests and benchmarks); return the status."""
        self._stop.clear()
        self._abort.clear()
        self.refresh_champion()
        champion = threading.Thread(target=self._champion_loop, name="champion-alias", daemon=True)
        champion.start()
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="live-status", daemon=True)
        if follow:
            heartbeat.start()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        done: set[str] = set()
        running: dict[str, threading.Thread] = {}
        shards = self._list_shards()
        last_list = time.monotonic()
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    self._stop.set()
                if self._failure is not None:
                    raise self._failure
                if follow and time.monotonic() - last_list > self.config.relist_seconds:
                    shards, last_list = self._list_shards(), time.monotonic()
                for shard_id, thread in list(running.items()):
                    if not thread.is_alive():
                        del running[shard_id]
                        done.add(shard_id)
                for shard in ready_shards(shards, done, set(running)):
                    sid = shard["ShardId"]
                    thread = threading.Thread(
                        target=self._shard, args=(sid, follow), name=f"live-{sid}", daemon=True
                    )
                    running[sid] = thread
                    thread.start()
                if not running:
                    break
                self.ready.set()
                self._stop.wait(0.2) if follow else time.sleep(0.02)
        except BaseException:
            self._abort.set()
            raise
        finally:
            self._stop.set()
            for thread in running.values():
                thread.join(timeout=self.config.retry.stop_grace_seconds + 5)
            if follow:
                heartbeat.join(timeout=5)
                self._write_marker(running=False)
        if self._failure is not None:
            raise self._failure
        return self.status.snapshot()

    def _list_shards(self) -> list[dict[str, Any]]:
        return every_shard(self.retrier, self.kinesis, self.stream_name)

    def _shard(self, shard_id: str, follow: bool) -> None:
        try:
            self._read_shard(shard_id, follow)
        except LeaseLostError as exc:
            logger.warning("%s", exc)
        except BaseException as exc:
            if not self._stop.is_set():
                logger.exception("shard %s failed", shard_id)
                self._failure = self._failure or exc
                self._abort.set()

    def _acquire(self, shard_id: str, follow: bool) -> Any:
        said = False
        while True:
            try:
                return self.store.acquire(shard_id)
            except LeaseHeldError as exc:
                if not follow:
                    raise
                if not said:
                    logger.warning("%s; waiting for it", exc)
                    said = True
                if self._stop.wait(min(5.0, self.config.lease_seconds / 3)):
                    return None

    def _read_shard(self, shard_id: str, follow: bool) -> None:
        taken = time.monotonic()  # the lease runs from before the acquire was asked for
        state = self._acquire(shard_id, follow)
        if state is None or state.finished:
            return
        release = True
        # A cache of the shard's accounts lives as long as this hold of its lease: whoever held
        # it before may have written them since this scorer last saw them.
        self._caches[shard_id] = OrderedDict()
        self._renewed[shard_id] = taken
        try:
            cursor = ShardCursor(
                self.kinesis, self.stream_name, shard_id, self.retrier, self.config.get_limit
            )
            position = state.checkpoint
            iterator: str | None = cursor.iterator_after(position)
            with self.status.lock:
                self.status.shards.setdefault(shard_id, ShardProgress()).checkpoint = position
            held: list[dict[str, Any]] = []  # pages read while behind, applied together
            held_since = time.monotonic()
            while not self._abort.is_set():
                page = cursor.get(
                    str(iterator), position if not held else held[-1]["SequenceNumber"]
                )
                records = page.get("Records", [])
                iterator = page.get("NextShardIterator")
                lag = page.get("MillisBehindLatest")
                if records and not held:
                    held_since = time.monotonic()
                held += records
                # Behind the tip (a backlog), pages are gathered before they are applied, so an
                # account touched by many pages is written once: at the tip, every page at once.
                behind = bool(records and lag and iterator is not None)
                gather = behind and (
                    len(held) < self.config.gather_records
                    and time.monotonic() - held_since < self.config.gather_seconds
                )
                if held and not gather:
                    self.process(shard_id, held)
                    position = held[-1]["SequenceNumber"]
                    asked = time.monotonic()
                    self.store.commit(shard_id, position)  # also extends the lease
                    self._renewed[shard_id] = asked
                    held = []
                with self.status.lock:
                    progress = self.status.shards.setdefault(shard_id, ShardProgress())
                    progress.lag_ms = None if lag is None else int(lag)
                    progress.checkpoint = position
                if iterator is None:
                    self.store.commit(shard_id, SHARD_END)
                    logger.info("shard %s is closed and fully scored", shard_id)
                    return
                caught_up = not records and not lag
                if self._stop.is_set() or (caught_up and not follow):
                    return
                if not records:
                    self._stop.wait(self.config.idle_sleep)
                self._hold_lease(shard_id)
        except LeaseLostError:
            release = False
            raise
        finally:
            self._caches.pop(shard_id, None)
            if release and not self._abort.is_set():
                self.store.release(shard_id)

    def _hold_lease(self, shard_id: str) -> None:
        """Extend the shard's lease when a third of it has gone by (LeaseLostError when another
        scorer took it). Called before every write of states too: a write starts with at least
        two thirds of the lease left, in which no other scorer can take the shard."""
        if time.monotonic() - self._renewed.get(shard_id, 0.0) > self.config.lease_seconds / 3:
            asked = time.monotonic()
            self.store.renew(shard_id)
            self._renewed[shard_id] = asked

    # ---- one page ---------------------------------------------------------------------------
    def process(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Apply, rescore, emit and save one page of a shard (see the module docstring). Any
        failure forgets the shard's cached states (some were applied but maybe not written):
        the page is read again from the table and the checkpoint."""
        try:
            self._process(shard_id, records)
        except BaseException:
            cache = self._caches.get(shard_id)
            if cache is not None:
                cache.clear()
            raise

    def _process(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        by_account: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        invalid = others = 0
        for record in records:
            seq = record["SequenceNumber"]
            try:
                event = validate(decode(record["Data"]), now=_arrival(record))
                refused = etl_refusal(event)
                if refused is not None:
                    raise EventValidationError("impossible_value", refused)
            except EventValidationError as exc:
                invalid += 1
                logger.debug("shard %s: record %s skipped: %s", shard_id, seq, exc)
                continue
            if event["source"] != self.settings.portfolio:
                others += 1  # another portfolio's event: its own live scorer scores it
                continue
            by_account.setdefault(event["account_id"], []).append((seq, event))
        entries = self._load(shard_id, list(by_account))
        changed: list[str] = []
        applied = duplicates = 0
        for account_id, events in by_account.items():
            entry = entries[account_id]
            dirty = False
            for seq, event in events:
                if entry.state.seen(shard_id, seq):
                    duplicates += 1
                    continue
                if entry.state.apply(event):
                    applied += 1
                else:
                    duplicates += 1
                entry.state.mark(shard_id, seq)
                dirty = True
            if dirty:
                changed.append(account_id)
        scores = self._score([entries[a] for a in changed])
        risk: list[dict[str, Any]] = []
        for account_id in changed:
            entry = entries[account_id]
            new = scores.get(account_id)
            if new is None:
                continue
            why = risk_change(entry.score, new, self.settings.risk_event_pd_delta)
            if why:
                risk.append(risk_event(entry.state, entry.score or {}, new, why))
        if risk:
            self._emit(risk)
            self.status.note_changes(risk)
        self._save(shard_id, [(entries[a], scores.get(a)) for a in changed])
        self.status.count(shard_id, len(records))
        with self.status.lock:
            self.status.applied += applied
            self.status.duplicates += duplicates
            self.status.invalid += invalid
            self.status.other_portfolios += others
            self.status.scored += sum(1 for s in scores.values() if s.get("pd") is not None)
            self.status.unscored += sum(1 for s in scores.values() if s.get("pd") is None)

    def _score(self, entries: list[_Entry]) -> dict[str, dict[str, Any]]:
        """Each entry's new score (pd None with a ``reason`` when it cannot be scored)."""
        if not entries:
            return {}
        current = self.holder.current
        months = lookback_for(list(current.kinds)) if current else 6
        rows = feature_rows([e.state for e in entries], months)
        out: dict[str, dict[str, Any]] = {}
        scorable: list[tuple[str, dict[str, Any]]] = []
        for entry, row in zip(entries, rows, strict=True):
            account_id = entry.state.account_id
            obs = entry.state.obs_date()
            base = {
                "as_of": entry.state.as_of,
                "event_id": entry.state.last_event_id,
                "obs_date": obs.isoformat() if obs else None,
                "features": None if isinstance(row, str) else row,
            }
            if isinstance(row, str):
                out[account_id] = {**base, "pd": None, "reason": row}
            elif current is None:
                reason = self.holder.last_error or "no champion loaded yet"
                out[account_id] = {**base, "pd": None, "reason": reason}
            else:
                missing = [n for n in current.kinds if n not in row and not n.startswith("attr_")]
                if missing:
                    reason = f"champion v{current.champion.version} takes {missing[:5]}"
                    out[account_id] = {**base, "pd": None, "reason": reason}
                else:
                    out[account_id] = base
                    scorable.append((account_id, row))
        if scorable and current is not None:
            for account_id, result in zip(
                [a for a, _ in scorable],
                _score_rows(current, [r for _, r in scorable]),
                strict=True,
            ):
                out[account_id].update(result)
        return out

    # ---- the online table -------------------------------------------------------------------
    def _load(self, shard_id: str, accounts: list[str]) -> dict[str, _Entry]:
        """The accounts' entries: from the shard's cache, else from the table (new if absent)."""
        cache = self._caches.setdefault(shard_id, OrderedDict())
        out: dict[str, _Entry] = {}
        missing = []
        for account_id in accounts:
            entry = cache.get(account_id)
            if entry is None:
                missing.append(account_id)
            else:
                out[account_id] = entry
                cache.move_to_end(account_id)
        for start in range(0, len(missing), BATCH_GET_MAX):
            chunk = missing[start : start + BATCH_GET_MAX]
            for account_id, item in self._batch_get(chunk).items():
                out[account_id] = _entry_from_item(account_id, item)
            for account_id in chunk:
                out.setdefault(account_id, _Entry(AccountState(account_id), 0, None))
        return out

    def _batch_get(self, accounts: list[str]) -> dict[str, dict[str, Any]]:
        keys = {live_key(a): a for a in accounts}
        pending: dict[str, Any] = {
            self.table: {
                "Keys": [{ONLINE_KEY: {"S": k}} for k in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "#k, #s, #v, #sc",
                "ExpressionAttributeNames": {
                    "#k": ONLINE_KEY,
                    "#s": "state",
                    "#v": "version",
                    "#sc": "score",
                },
            }
        }
        found: dict[str, dict[str, Any]] = {}
        attempt = 0
        while pending:
            answer = self.retrier.call(
                "DynamoDB BatchGetItem", self.dynamodb.batch_get_item, RequestItems=pending
            )
            for item in answer.get("Responses", {}).get(self.table, []):
                found[keys[item[ONLINE_KEY]["S"]]] = item
            pending = answer.get("UnprocessedKeys") or {}
            if pending:
                attempt += 1
                time.sleep(self.retrier.policy.delay(attempt, self.retrier.rng))
        return found

    def _save(self, shard_id: str, updates: list[tuple[_Entry, dict[str, Any] | None]]) -> None:
        """Write the accounts' items with BatchWriteItem (25 a request, several in flight), then
        keep them in the shard's cache. Unconditional: this scorer holds the shard's lease, so
        it is the accounts' only writer, and a replayed write holds the same state
        (docs/adr/0006-live-scorer.md)."""
        now = repr(time.time())
        items: list[tuple[_Entry, dict[str, Any] | None, dict[str, Any]]] = []
        for entry, score in updates:
            state = entry.state
            item = {
                ONLINE_KEY: {"S": live_key(state.account_id)},
                "live_account": {"S": state.account_id},
                "state": {"S": orjson.dumps(state.to_json()).decode()},
                "version": {"N": str(entry.version + 1)},  # items written: a replay writes none
                "as_of": {"S": state.as_of or ""},
                "event_id": {"S": state.last_event_id or ""},
                "updated_at": {"N": now},
            }
            kept = score if score is not None else entry.score
            if kept is not None:
                features = kept.get("features")
                item["obs_date"] = {"S": str(kept.get("obs_date") or "")}
                item["features"] = {"S": orjson.dumps(features or {}, default=str).decode()}
                stored = {k: v for k, v in kept.items() if k != "features"}
                item["score"] = {"S": orjson.dumps(stored, default=str).decode()}
            items.append((entry, kept, item))

        def attempt(**kwargs: Any) -> Any:
            # every attempt (a retry across an outage too) starts on a lease with at least two
            # thirds left, or fails with LeaseLostError when another scorer took the shard
            with self._lease_lock:
                self._hold_lease(shard_id)
            return self.dynamodb.batch_write_item(**kwargs)

        def write(chunk: list[dict[str, Any]]) -> None:
            pending: dict[str, Any] = {self.table: [{"PutRequest": {"Item": i}} for i in chunk]}
            tries = 0
            while pending:
                answer = self.retrier.call("DynamoDB BatchWriteItem", attempt, RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if pending:  # throttled in part: the rest again, after a backoff
                    tries += 1
                    time.sleep(self.retrier.policy.delay(tries, self.retrier.rng))

        puts = [item for _, _, item in items]
        chunks = [puts[i : i + BATCH_WRITE_MAX] for i in range(0, len(puts), BATCH_WRITE_MAX)]
        list(self._writers.map(write, chunks))
        cache = self._caches.setdefault(shard_id, OrderedDict())
        for entry, kept, _ in items:
            entry.version += 1
            entry.score = kept
            cache[entry.state.account_id] = entry
            cache.move_to_end(entry.state.account_id)
        while len(cache) > self.config.cache_accounts:
            cache.popitem(last=False)

    # ---- risk events ------------------------------------------------------------------------
    def _emit(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), PUT_RECORDS_MAX):
            pending = [
                {"Data": orjson.dumps(e), "PartitionKey": e["account_id"]}
                for e in events[start : start + PUT_RECORDS_MAX]
            ]
            attempt = 0
            while pending:
                answer = self.retrier.call(
                    "Kinesis PutRecords",
                    self.kinesis.put_records,
                    StreamName=self.risk_stream,
                    Records=pending,
                )
                if not answer.get("FailedRecordCount"):
                    break
                pending = [
                    rec
                    for rec, res in zip(pending, answer["Records"], strict=True)
                    if res.get("ErrorCode")
                ]
                attempt += 1
                time.sleep(self.retrier.policy.delay(attempt, self.retrier.rng))

    # ---- status -----------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.config.status_seconds):
            self._write_marker(running=True)

    def _write_marker(self, running: bool) -> None:
        """The live marker item: tells the API to read live items; holds the last status."""
        try:
            if running:
                self.dynamodb.put_item(
                    TableName=self.table,
                    Item={
                        ONLINE_KEY: {"S": LIVE_META_KEY},
                        "status": {"S": json.dumps(self.status.snapshot())},
                        "updated_at": {"N": repr(time.time())},
                    },
                )
            else:
                self.dynamodb.delete_item(
                    TableName=self.table, Key={ONLINE_KEY: {"S": LIVE_META_KEY}}
                )
        except Exception as exc:  # the cloud may be down: the next beat tries again
            logger.debug("live marker not written: %s", exc)


def _arrival(record: dict[str, Any]) -> datetime:
    arrived = record.get("ApproximateArrivalTimestamp")
    return arrived if isinstance(arrived, datetime) else datetime.now(UTC)


def _entry_from_item(account_id: str, item: dict[str, Any]) -> _Entry:
    state = AccountState.from_json(account_id, orjson.loads(item["state"]["S"]))
    score = orjson.loads(item["score"]["S"]) if "score" in item else None
    return _Entry(state, int(item["version"]["N"]), score)


def _score_rows(current: Loaded, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The champion's pd, score, tier, decision and reasons for each feature row."""
    champion = current.champion
    inputs = [{name: row.get(name) for name in current.kinds} for row in rows]
    out: list[dict[str, Any]] = []
    if current.scorer is not None:
        results = current.scorer.score(inputs, None)
    else:
        frame = pd.DataFrame(inputs, columns=list(current.kinds))
        try:
            results = score_records(current, frame, [None] * len(rows))["results"]
        except (ValueError, TypeError) as exc:
            reason = f"champion v{champion.version} cannot score these features: {exc}"
            return [{"pd": None, "reason": reason} for _ in rows]
    for result in results:
        result.pop("application_id", None)
        if result.get("pd") is None or not np.isfinite(result["pd"]):
            out.append({"pd": None, "reason": "the champion cannot score missing values here"})
            continue
        out.append({**result, "model_name": champion.name, "model_version": champion.version})
    return out


def risk_event(
    state: AccountState, old: dict[str, Any], new: dict[str, Any], why: list[str]
) -> dict[str, Any]:
    """The versioned risk event (README "The event contract"): same id on a replay."""
    trigger = state.last_event_id or ""
    keep = ("pd", "score", "risk_tier", "decision", "model_version")
    return {
        "risk_event_id": str(uuid.uuid5(RISK_NAMESPACE, f"{state.account_id}/{trigger}")),
        "event_type": names.RISK_EVENT_TYPE,
        "schema_version": names.RISK_EVENT_SCHEMA_VERSION,
        "account_id": state.account_id,
        "event_time": state.as_of,
        "emitted_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "trigger_event_id": trigger,
        "changed": why,
        "old": {k: old.get(k) for k in keep},
        "new": {k: new.get(k) for k in keep},
        "reasons": new.get("reasons", []),
        "obs_date": new.get("obs_date"),
    }


# ---- the status endpoint and the process ------------------------------------------------------
def serve_status(scorer: LiveScorer, host: str, port: int) -> ThreadingHTTPServer:
    """``GET /health`` (and ``/status``): the scorer's status as JSON, on a background thread;
    503 until the champion was checked and the shards are being read."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/health", "/status"):
                self.send_error(404, "GET /health or /status")
                return
            ready = scorer.ready.is_set()
            body = json.dumps({**scorer.status.snapshot(), "ready": ready}).encode()
            self.send_response(200 if ready else 503)  # `live up` waits until it reads
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("status %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="live-http", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    """``python -m serving.live``: the managed service's process (settings from the
    environment); SIGTERM or Ctrl-C stops it cleanly (leases released)."""
    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    settings = Settings.from_env()
    config = LiveConfig(
        idle_sleep=float(os.environ.get("RISKSTREAM_LIVE_IDLE_SECONDS", "0.1")),
        champion_ttl=float(os.environ.get("RISKSTREAM_CHAMPION_TTL", "5")),
        lease_seconds=float(os.environ.get("RISKSTREAM_LIVE_LEASE_SECONDS", "30")),
    )
    scorer = LiveScorer(settings, config)
    host, port = host_port(settings.live_url, "RISKSTREAM_LIVE_URL")
    server = serve_status(scorer, host, port)
    signal.signal(signal.SIGTERM, lambda *_: scorer.stop())
    logger.info(
        "live scorer: stream %s -> %s (risk events on %s), status at %s",
        settings.stream_name,
        settings.online_table,
        settings.risk_stream_name,
        settings.live_url,
    )
    try:
        scorer.run(follow=True)
    except KeyboardInterrupt:
        scorer.stop()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
