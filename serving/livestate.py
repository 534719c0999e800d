"""One account's live state: what the feature definitions need, updated one event at a time.

Pure module (no I/O, no clock). The live scorer (:mod:`serving.live`) keeps one
:class:`AccountState` per account in the online table and, for every event of the stream in
order per account, calls :meth:`AccountState.apply`; the account's features are then
:func:`feature_rows`, the very rows ``POST /score``'s raw form builds
(:func:`serving.rawfeatures.build_rows`, which runs :mod:`riskstream.featuredefs`, the definitions
the Spark features job runs). The batch features job's rules, kept here:

- **duplicates**: an ``event_id`` already applied changes nothing (the ETL keeps the first copy);
- **out of order and late**: the state is what the features job aggregates, per calendar month of
  each event's business date (``statement_date`` for statements, the UTC date of ``event_time``
  otherwise), so the order in which events arrive does not matter: per month the statement with
  the greatest (``statement_date``, ``event_time``, balance, ...) wins (a correction replaces the
  earlier statement), payments are summed, purchases summed per merchant category with a count;
- **population**: an account is scored once it has an ``account_opened`` event (the first by
  ``event_time``, then ``event_id``), opened before the observation date, and without a default
  (``outcome`` with ``default_flag`` 1) observed before it;
- **the observation date** is the pipeline's default for these facts
  (:func:`riskstream.featuredefs.default_obs_date`): the first day of the month after the last
  statement, so an account's features at that date equal the batch job's at that date.

Idempotence: each shard's high-water mark (the last sequence number applied) travels with the
state, so a record read again after a restart is skipped by position as well as by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from riskstream import featuredefs
from riskstream.events import parse_time
from serving.rawfeatures import build_rows

STATE_VERSION = 1
KEEP_MONTHS = 25  # the longest lookback (24 months) and the month of the observation date


def _month(day: date) -> int:
    return featuredefs.month_number(day)


def _month_start(month: int) -> date:
    year, index = divmod(month - 1, 12)
    return date(year, index + 1, 1)


def _micros(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1_000_000)


def _iso(micros: int) -> str:
    moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _statement_key(row: list[Any]) -> tuple[Any, ...]:
    """The features job's ``max(struct(statement_date, event_time, balance, minimum_due,
    repayment_status, credit_limit))``: field by field, a null below any value."""
    return tuple((0, 0) if v is None else (1, v) for v in row)


@dataclass
class AccountState:
    """What the features need of one account (JSON-able; see the module docstring)."""

    account_id: str
    opened: dict[str, Any] | None = None  # {"micros", "event_id", "payload"}
    # month number -> [statement_date ISO, event micros, balance, minimum_due, status, limit]
    statements: dict[int, list[Any]] = field(default_factory=dict)
    payments: dict[int, float] = field(default_factory=dict)
    # month number -> category -> [amount summed, purchases]
    purchases: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    defaulted_on: str | None = None  # the earliest observed date of a default
    ids: dict[str, int] = field(default_factory=dict)  # applied event ids -> month (pruning)
    hwm: dict[str, str] = field(default_factory=dict)  # shard -> last sequence number applied
    as_of_micros: int | None = None  # the latest event time applied
    last_event_id: str | None = None
    applied: int = 0  # events applied (duplicates not counted)

    # ---- applying an event --------------------------------------------------------------------
    def seen(self, shard_id: str, sequence_number: str) -> bool:
        """Whether the record at this position was already applied (a replay after a restart)."""
        mark = self.hwm.get(shard_id)
        return mark is not None and int(sequence_number) <= int(mark)

    def mark(self, shard_id: str, sequence_number: str) -> None:
        mark = self.hwm.get(shard_id)
        if mark is None or int(sequence_number) > int(mark):
            self.hwm[shard_id] = sequence_number

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one valid event (:func:`riskstream.events.validate`); False when it changes
        nothing (its ``event_id`` was applied already)."""
        event_id = str(event["event_id"])
        if event_id in self.ids:
            return False
        kind = event["event_type"]
        payload = event["payload"]
        moment = parse_time(event["event_time"])
        micros = _micros(moment)
        month = _month(moment.astimezone(UTC).date())
        if kind == "account_opened":
            mine = (micros, event_id)
            if self.opened is None or mine < (self.opened["micros"], self.opened["event_id"]):
                self.opened = {"micros": micros, "event_id": event_id, "payload": dict(payload)}
        elif kind == "statement":
            day = date.fromisoformat(payload["statement_date"])
            month = _month(day)
            row = [
                day.isoformat(),
                micros,
                payload["balance"],
                payload["minimum_due"],
                payload.get("repayment_status"),
                payload.get("credit_limit"),
            ]
            held = self.statements.get(month)
            if held is None or _statement_key(row) > _statement_key(held):
                self.statements[month] = row
        elif kind == "payment":
            self.payments[month] = self.payments.get(month, 0.0) + float(payload["amount"])
        elif kind == "purchase":
            per = self.purchases.setdefault(month, {})
            entry = per.setdefault(payload["merchant_category"], [0.0, 0])
            entry[0] += float(payload["amount"])
            entry[1] += 1
        elif kind == "outcome" and int(payload["default_flag"]) == 1:
            observed = str(payload["observed_date"])
            if self.defaulted_on is None or observed < self.defaulted_on:
                self.defaulted_on = observed
        self.ids[event_id] = month if kind in ("statement", "payment", "purchase") else 0
        if self.as_of_micros is None or micros > self.as_of_micros:
            self.as_of_micros = micros
        self.last_event_id = event_id
        self.applied += 1
        self._prune()
        return True

    def _prune(self) -> None:
        """Forget months no observation date can reach again: with statements, the observation
        date only moves forward, so months older than the longest lookback before it are out."""
        if not self.statements:
            return
        obs = self.obs_date()
        assert obs is not None  # there are statements
        oldest = _month(obs) - KEEP_MONTHS
        for table in (self.statements, self.payments, self.purchases):
            for month in [m for m in table if m < oldest]:
                del table[month]
        for event_id in [i for i, m in self.ids.items() if 0 < m < oldest]:
            del self.ids[event_id]

    # ---- what the features see ------------------------------------------------------------
    @property
    def opened_on(self) -> date | None:
        if self.opened is None:
            return None
        return datetime.fromtimestamp(self.opened["micros"] / 1_000_000, UTC).date()

    @property
    def as_of(self) -> str | None:
        return None if self.as_of_micros is None else _iso(self.as_of_micros)

    def obs_date(self) -> date | None:
        """The pipeline's default observation date for these facts (see the module docstring);
        None before any dated fact (only an outcome so far)."""
        if self.statements:  # then only the last statement counts (ISO dates sort as dates)
            last = max(row[0] for row in self.statements.values())
            return featuredefs.default_obs_date([date.fromisoformat(last)], [])
        others = [_month_start(m) for m in (*self.payments, *self.purchases)]
        if self.opened_on is not None:
            others.append(self.opened_on)
        if not others:
            return None
        return featuredefs.default_obs_date([], others)

    def unscored_reason(self, obs: date | None) -> str | None:
        """Why the account is outside the scored population at ``obs`` (None: it is in it)."""
        if self.opened_on is None or obs is None:
            return "no account_opened event yet"
        if self.opened_on >= obs:
            return f"opened on {self.opened_on}, not before the observation date {obs}"
        if self.defaulted_on is not None and self.defaulted_on < obs.isoformat():
            return f"defaulted on {self.defaulted_on}, before the observation date {obs}"
        return None

    def application(self, obs: date | None = None) -> dict[str, Any]:
        """The account as ``POST /score``'s raw form takes it, at ``obs`` (default: the
        account's own observation date). Months are sent aggregated: one statement, one payment
        and one purchase line per merchant category (with its count) each."""
        obs = obs or self.obs_date()
        assert self.opened is not None and self.opened_on is not None and obs is not None
        facts = self.opened["payload"]
        return {
            "application_id": self.account_id,
            "obs_date": obs,
            "opened_on": self.opened_on,
            **{k: facts.get(k) for k in _FACTS},
            "attributes": facts.get("attributes") or {},
            "statements": [
                {
                    "statement_date": date.fromisoformat(row[0]),
                    "balance": row[2],
                    "minimum_due": row[3],
                    "repayment_status": row[4],
                    "credit_limit": row[5],
                }
                for _, row in sorted(self.statements.items())
            ],
            "payments": [
                {"date": _month_start(m), "amount": amount}
                for m, amount in sorted(self.payments.items())
            ],
            "purchases": [
                {
                    "date": _month_start(m),
                    "amount": total,
                    "count": int(n),
                    "merchant_category": category,
                }
                for m, per in sorted(self.purchases.items())
                for category, (total, n) in sorted(per.items())
            ],
        }

    # ---- storage ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "opened": self.opened,
            "statements": {str(k): v for k, v in self.statements.items()},
            "payments": {str(k): v for k, v in self.payments.items()},
            "purchases": {str(k): v for k, v in self.purchases.items()},
            "defaulted_on": self.defaulted_on,
            "ids": self.ids,
            "hwm": self.hwm,
            "as_of": self.as_of_micros,
            "last_event_id": self.last_event_id,
            "applied": self.applied,
        }

    @classmethod
    def from_json(cls, account_id: str, data: Mapping[str, Any]) -> AccountState:
        if data.get("v") != STATE_VERSION:
            raise ValueError(
                f"live state of account {account_id} has version {data.get('v')!r}; this build "
                f"reads {STATE_VERSION}: reset the live state (riskstream live reset) and replay"
            )
        return cls(
            account_id=account_id,
            opened=data["opened"],
            statements={int(k): v for k, v in data["statements"].items()},
            payments={int(k): v for k, v in data["payments"].items()},
            purchases={int(k): v for k, v in data["purchases"].items()},
            defaulted_on=data["defaulted_on"],
            ids=dict(data["ids"]),
            hwm=dict(data["hwm"]),
            as_of_micros=data["as_of"],
            last_event_id=data["last_event_id"],
            applied=int(data["applied"]),
        )


def etl_refusal(event: Mapping[str, Any]) -> str | None:
    """The ETL's rules beyond the event contract (``etl.transforms``): why it would quarantine
    this valid event, or None. The live state skips what the batch job never sees."""
    if event["event_type"] == "statement":
        payload = event["payload"]
        if payload["due_date"] < payload["statement_date"]:
            return (
                f"payload.due_date={payload['due_date']} is before "
                f"payload.statement_date={payload['statement_date']}"
            )
    return None


_FACTS = ("credit_limit", "income", "age", "sex", "education", "marital_status")


def feature_rows(
    states: list[AccountState], months: int, obs: date | None = None
) -> list[dict[str, Any] | str]:
    """Each state's feature row at ``obs`` (default: each account's own observation date), or
    the reason it is not scored there. One call of the raw form's feature builder for all."""
    out: list[dict[str, Any] | str] = []
    apps: list[dict[str, Any]] = []
    where: list[int] = []
    for state in states:
        when = obs or state.obs_date()
        reason = state.unscored_reason(when)
        if reason is not None or when is None:
            out.append(reason or "no dated event yet")
            continue
        where.append(len(out))
        out.append("")
        apps.append(state.application(when))
    for i, row in zip(where, build_rows(apps, months), strict=True):
        out[i] = row
    return out


def risk_change(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], pd_delta: float
) -> list[str]:
    """Why a rescore is a risk event: the tier or decision changed, or the PD moved by more
    than ``pd_delta`` (an account's first score is not a change, nor a rescore that could not
    score). Empty: no event."""
    if not old or old.get("pd") is None or new.get("pd") is None:
        return []  # a first score, or no score now: nothing to compare
    why = []
    if old.get("risk_tier") != new.get("risk_tier"):
        why.append("tier")
    if old.get("decision") != new.get("decision"):
        why.append("decision")
    if abs(float(new["pd"]) - float(old["pd"])) > pd_delta:
        why.append("pd")
    return why
