"""A seeded synthetic card portfolio with a known probability of default. Pure module.

The causal story, simulated month by month for all accounts at once (numpy, vectorised):

1. **Latent risk** ``z ~ N(0, 1)`` per account, never observed. It lowers income and credit limit a
   little, raises spending, and makes weaker payment behaviour more likely.
2. **Shocks**: each month an account may be hit by a hardship shock (job loss, illness) with a
   probability that grows with ``z``; a shock lasts 3-9 months, raises spending (more cash
   advances) and pushes payments towards minimum or missed.
3. **Observable behaviour**: purchases by merchant category (capped by available credit; a card
   3+ cycles delinquent is blocked), a statement at each month end (balance with interest and late
   fees, minimum due, repayment status), and a payment of the previous statement: full, minimum,
   partial or missed, drawn from a multinomial whose logits depend on ``z``, the shock, the current
   delinquency and utilisation. A payment below the minimum adds a cycle of delinquency; paying at
   least the minimum cures it.
4. **Default**, drawn at the end of every month for each account that has not defaulted yet
   (an ``outcome`` event with ``default_flag`` 0 or 1, observed on the last day of the month; a
   defaulted account sends nothing more), is Bernoulli with the monthly hazard

   ``logit(h) = -5.6 + 0.9 z + 0.55 min(cycles_delinquent, 6) + 1.4 (utilisation - 0.3)
               + 0.9 shock_active + 0.35 missed_payments_last_3 - 0.3 log(income / 48,000)``

   so the stream carries real but imperfect signal (``z`` and shocks are hidden), and a default
   within any window after an observation date can be read from the outcomes (a 12-month PD by
   default: ``performance_months``). The oracle (never in the stream) has a row per account and
   observation date (the first day of each month from the second on, the state after the month
   before): ``true_pd`` is the hazard of that state compounded over the window,
   ``1 - (1 - h)^W``, and ``default_flag`` whether the account did default in the window (cut at
   the last simulated month). The compounded hazard ranks the accounts by their risk at the
   observation date; it is not the exact window PD (delinquency that builds after the date
   raises the later hazards), so its level runs below the realised default rate.
5. **An attainable ceiling** (``attainable_pd`` in the oracle): the best PD a model could give from
   what the stream shows. The hidden part of the logit, ``h = 0.9 z + 0.9 shock_active``, is
   replaced by its best linear prediction from observable per-account summaries of the history
   up to the observation date (log income and limit, delinquency, utilisation and missed
   payments in the last three months, and over all months: missed payments, payments in full,
   mean utilisation, purchase count, spend / limit), fitted by least squares on the portfolio
   itself (the generator knows ``h``); the residual variance ``s2`` is integrated out with the
   probit approximation ``sigmoid(mu / sqrt(1 + pi s2 / 8))``, and the hazard is compounded
   over the window like ``true_pd``. Its AUC on a set of rows is the ceiling the
   ``model.synthetic.oot_gap`` benchmark compares models with: a model can beat it by finding
   non-linear evidence the linear projection misses, or how risk builds after the date.

Every event id is a uuid5 of (source, seed, account, type, time, index), so the same seed replays
exactly the same events and ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ingestion.ids import uuid5_text
from riskstream import names
from riskstream.events import MERCHANT_CATEGORIES, envelope

SOURCE = names.SOURCE_SYNTHETIC

EDUCATION = ("graduate_school", "university", "high_school", "other")
MARITAL = ("married", "single", "other")
SEX = ("female", "male")
# Typical ticket size per merchant category (same order as MERCHANT_CATEGORIES).
_TICKET = np.array([60, 45, 35, 300, 80, 50, 90, 70, 40, 200, 30], dtype=float)
_CATEGORY_P = np.array([0.22, 0.12, 0.14, 0.03, 0.12, 0.15, 0.06, 0.05, 0.06, 0.02, 0.03])
_CASH = MERCHANT_CATEGORIES.index("cash_advance")
APR = 0.20
LATE_FEE = 25.0
MIN_PAYMENT_FLOOR = 25.0
MIN_PAYMENT_RATE = 0.02
HAZARD_INTERCEPT = -5.6  # monthly: about 9% of accounts default within 12 months


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a portfolio. ``start`` is the first day of the first activity month."""

    accounts: int = names.DEFAULT_ACCOUNTS
    months: int = names.DEFAULT_MONTHS
    seed: int = 7
    start: date = date(2024, 1, 1)
    purchases_per_month: float = 4.0
    # the oracle's PD horizon: the months after an observation date a default counts in
    performance_months: int = names.SYNTHETIC_PERFORMANCE_MONTHS

    def __post_init__(self) -> None:
        if not 1 <= self.accounts <= 5_000_000:
            raise ValueError(f"accounts={self.accounts} must be between 1 and 5,000,000")
        if not 2 <= self.months <= 120:
            raise ValueError(f"months={self.months} must be between 2 and 120")
        if self.start.day != 1:
            raise ValueError(f"start={self.start} must be the first day of a month")
        if not 0 < self.purchases_per_month <= 100:
            raise ValueError(f"purchases_per_month={self.purchases_per_month} must be in (0, 100]")
        if not 1 <= self.performance_months <= 24:
            raise ValueError(f"performance_months={self.performance_months} must be in [1, 24]")


@dataclass
class _Block:
    """Column arrays for the events of one month (or the opening/outcome block)."""

    account: np.ndarray
    seconds: np.ndarray  # seconds since the epoch, int64
    kind: np.ndarray  # 0 opened, 1 purchase, 2 statement, 3 payment, 4 outcome
    amount: np.ndarray
    extra: np.ndarray  # category index, repayment status, or default flag
    extra2: np.ndarray = field(default_factory=lambda: np.zeros(0))  # min due / paid stmt

    def __post_init__(self) -> None:
        if len(self.extra2) != len(self.account):
            self.extra2 = np.zeros(len(self.account))

    def sorted(self) -> _Block:
        order = np.lexsort((self.seconds, self.account))
        return _Block(
            self.account[order],
            self.seconds[order],
            self.kind[order],
            self.amount[order],
            self.extra[order],
            self.extra2[order],
        )


@dataclass
class SyntheticPortfolio:
    """The simulated portfolio: ``events()`` to stream, ``oracle`` to keep beside the stream.

    It holds no events: ``events()`` plays the months again from the seed, one month in memory
    at a time, so a large portfolio streams in bounded memory (the same seed gives the same
    events)."""

    config: SyntheticConfig
    account_ids: list[str]
    profile: pd.DataFrame
    # per account and observation date: account_id, obs_date, true_pd, observed_date,
    # default_flag, attainable_pd (the module docstring, 4. and 5.)
    oracle: pd.DataFrame
    month_sizes: list[int]  # events per month, outcomes included

    @property
    def n_events(self) -> int:
        return self.config.accounts + sum(self.month_sizes)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event in time order per account: opened, then month by month, then outcomes.
        The iterator holds the profile, not the portfolio: the oracle can go while it runs."""
        return _stream(self.config, self.account_ids, self.profile)


@dataclass(frozen=True)
class _Accounts:
    """What each account is, drawn once: the hidden risk ``z`` and the observable profile."""

    z: np.ndarray
    age: np.ndarray
    income: np.ndarray
    limit: np.ndarray
    education: np.ndarray
    marital: np.ndarray
    sex: np.ndarray
    spend_rate: np.ndarray
    opened_days: np.ndarray

    @property
    def n(self) -> int:
        return len(self.z)


@dataclass
class _State:
    """Each account's state as the months go by, plus the observable running summaries the
    attainable ceiling is computed from."""

    n: int
    balance: np.ndarray = field(init=False)  # last statement balance
    min_due: np.ndarray = field(init=False)
    dpd: np.ndarray = field(init=False)  # cycles delinquent
    shock_left: np.ndarray = field(init=False)
    paid_full_prev: np.ndarray = field(init=False)
    util: np.ndarray = field(init=False)
    missed_hist: list[np.ndarray] = field(default_factory=list)
    missed_total: np.ndarray = field(init=False)
    full_total: np.ndarray = field(init=False)
    util_total: np.ndarray = field(init=False)
    purchases_total: np.ndarray = field(init=False)
    spend_total: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name in ("balance", "min_due", "util", "missed_total", "full_total", "util_total"):
            setattr(self, name, np.zeros(self.n))
        for name in ("purchases_total", "spend_total"):
            setattr(self, name, np.zeros(self.n))
        self.dpd = np.zeros(self.n, dtype=int)
        self.shock_left = np.zeros(self.n, dtype=int)
        self.paid_full_prev = np.zeros(self.n, dtype=bool)


_DAY = 86_400


@dataclass
class _Month:
    """One played month: its events (outcomes included, sorted) and what the oracle needs. The
    arrays are the simulation's own: read them before the next month is played."""

    index: int
    accounts: _Accounts
    block: _Block
    defaulted_in: np.ndarray  # the month each account defaulted in, -1 while it has not
    true_h: np.ndarray
    attainable_h: np.ndarray


def _months(config: SyntheticConfig, *, attainable: bool = True) -> Iterator[_Month]:
    """Play the months described in the module docstring: draw the accounts, then each month's
    payments, purchases, statements and defaults; an account that defaulted sends nothing more.
    The same config plays the same months. ``attainable=False`` skips the ceiling's fit."""
    rng = np.random.default_rng(config.seed)
    # Defaults draw from their own stream: the activity of a seed does not depend on them.
    default_rng = np.random.default_rng([config.seed, 1])
    acc = _draw_accounts(rng, config.accounts)
    state = _State(acc.n)
    month_start_s = _month_starts(config)
    defaulted_in = np.full(acc.n, -1)
    for m in range(config.months):
        block = _play_month(rng, config, acc, state, m, month_start_s)
        active = defaulted_in < 0
        true_h, attainable_h = _hazards(acc, state, m + 1, attainable=attainable)
        now = active & (default_rng.random(acc.n) < true_h)
        defaulted_in[now] = m
        outcome_s = month_start_s(m + 1) - _DAY + 23 * 3600 + 59 * 60 + 59
        who = np.flatnonzero(active)
        outcomes = _Block(
            who,
            np.full(len(who), outcome_s),
            np.full(len(who), 4),
            np.zeros(len(who)),
            now[who].astype(float),
        )
        events = _concat([_keep(block, active), outcomes]).sorted()
        yield _Month(m, acc, events, defaulted_in, true_h, attainable_h)


def simulate(config: SyntheticConfig) -> SyntheticPortfolio:
    """Play the portfolio once for its profile, oracle and size; its events are played again,
    month by month, when they are streamed (:meth:`SyntheticPortfolio.events`)."""
    account_ids = [f"SYN{i:07d}" for i in range(config.accounts)]
    oracle_parts: list[_OracleMonth] = []
    sizes: list[int] = []
    month: _Month | None = None
    for month in _months(config):
        sizes.append(len(month.block.account))
        who = np.flatnonzero(month.defaulted_in < 0)
        oracle_parts.append(
            _OracleMonth(month.index + 1, who, month.true_h[who], month.attainable_h[who])
        )
    assert month is not None  # config.months >= 2
    acc = month.accounts
    month_start_s = _month_starts(config)
    profile = pd.DataFrame(
        {
            "account_id": account_ids,
            "opened_s": month_start_s(0) - acc.opened_days * _DAY + 10 * 3600,
            "credit_limit": acc.limit,
            "income": acc.income,
            "age": acc.age,
            "sex": np.array(SEX)[acc.sex],
            "education": np.array(EDUCATION)[acc.education],
            "marital_status": np.array(MARITAL)[acc.marital],
        }
    )
    oracle = _oracle(config, account_ids, oracle_parts, month.defaulted_in)
    return SyntheticPortfolio(config, account_ids, profile, oracle, sizes)


def _keep(block: _Block, active: np.ndarray) -> _Block:
    """The events of the accounts still active (a defaulted account sends nothing more)."""
    mask = active[block.account]
    return _Block(
        block.account[mask],
        block.seconds[mask],
        block.kind[mask],
        block.amount[mask],
        block.extra[mask],
        block.extra2[mask],
    )


def _month_start(config: SyntheticConfig, m: int) -> date:
    index = config.start.year * 12 + config.start.month - 1 + m
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class _OracleMonth:
    """The accounts not yet defaulted at the observation date that starts month ``m`` (the state
    after month ``m - 1``), with that state's monthly hazards."""

    m: int
    who: np.ndarray
    true_h: np.ndarray
    attainable_h: np.ndarray


def _oracle(
    config: SyntheticConfig,
    account_ids: list[str],
    parts: list[_OracleMonth],
    defaulted_in: np.ndarray,
) -> pd.DataFrame:
    """The oracle's rows, each hazard compounded over the window, and ``default_flag``: 1 when
    the account defaulted in the window from the row's observation date (the window cut at the
    last simulated month). Built from arrays at the end, so it is held once, not twice."""
    window = config.performance_months
    who = np.concatenate([p.who for p in parts])
    m = np.concatenate([np.full(len(p.who), p.m) for p in parts])
    obs = np.array([None] + [_month_start(config, k) for k in range(1, config.months + 1)])
    observed = np.array(
        [None]
        + [
            _month_start(config, k + window) - timedelta(days=1)
            for k in range(1, config.months + 1)
        ]
    )
    defaulted = defaulted_in[who]
    return pd.DataFrame(
        {
            "account_id": pd.Series(np.array(account_ids, dtype=object)[who], dtype="string"),
            "obs_date": pd.Series(obs[m], dtype="object"),
            "true_pd": 1 - (1 - np.concatenate([p.true_h for p in parts])) ** window,
            "observed_date": pd.Series(observed[m], dtype="object"),
            "attainable_pd": 1 - (1 - np.concatenate([p.attainable_h for p in parts])) ** window,
            "default_flag": ((defaulted >= m) & (defaulted < m + window)).astype(int),
        }
    )


def _draw_accounts(rng: np.random.Generator, n: int) -> _Accounts:
    z = rng.standard_normal(n)
    age = np.clip(np.round(rng.normal(42, 12, n)), 18, 85).astype(int)
    income = np.round(np.exp(rng.normal(np.log(48_000) - 0.15 * z, 0.45)), -2)
    income = np.maximum(income, 6_000.0)
    limit = np.maximum(np.round(income * rng.uniform(0.15, 0.45, n) * np.exp(-0.1 * z), -2), 500)
    edu_p = np.array([0.2, 0.45, 0.28, 0.07])
    education = _choice_shifted(rng, edu_p, shift=0.35 * z)
    marital = rng.choice(len(MARITAL), size=n, p=[0.48, 0.45, 0.07])
    sex = rng.choice(len(SEX), size=n, p=[0.52, 0.48])
    spend_rate = rng.uniform(0.6, 1.6, n) * np.exp(0.2 * z)
    opened_days = rng.integers(30, 3000, n)
    return _Accounts(z, age, income, limit, education, marital, sex, spend_rate, opened_days)


def _month_starts(config: SyntheticConfig) -> Callable[[int], int]:
    """Epoch seconds of the start of month ``m`` of the simulation."""
    month0 = np.datetime64(config.start, "M")
    epoch = np.datetime64(0, "s")

    def month_start_s(m: int) -> int:
        return int(((month0 + m).astype("datetime64[s]") - epoch).astype(np.int64))

    return month_start_s


def _play_month(
    rng: np.random.Generator,
    config: SyntheticConfig,
    acc: _Accounts,
    st: _State,
    m: int,
    month_start_s: Callable[[int], int],
) -> _Block:
    """One month: shocks, the payment of last month's statement, purchases, the statement."""
    n, z = acc.n, acc.z
    start_s = month_start_s(m)
    days_in_month = (month_start_s(m + 1) - start_s) // _DAY
    new_shock = (st.shock_left == 0) & (rng.random(n) < 0.012 * np.exp(0.5 * z))
    st.shock_left = np.where(new_shock, rng.integers(3, 10, n), st.shock_left)
    shock = st.shock_left > 0
    parts: list[_Block] = []
    carry, past_due, missed = _pay_last_statement(rng, acc, st, m, start_s, shock, parts)
    st.missed_hist.append(missed)
    st.missed_total += missed
    st.full_total += st.paid_full_prev
    spend = _purchases(rng, config, acc, st, shock, carry, start_s, days_in_month, parts)
    parts.append(_statement(acc, st, carry, spend, past_due, month_start_s(m + 1)))
    return _concat(parts).sorted()


def _pay_last_statement(
    rng: np.random.Generator,
    acc: _Accounts,
    st: _State,
    m: int,
    start_s: int,
    shock: np.ndarray,
    parts: list[_Block],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Payments of last month's statement, 15-24 days into this month; returns the balance
    carried, the amount past due and who missed the minimum."""
    n, z = acc.n, acc.z
    balance, min_due = st.balance, st.min_due
    if m == 0:
        return balance.copy(), np.zeros(n), np.zeros(n, dtype=bool)
    owed = balance > 0
    u = 0.9 * z + 1.5 * shock + 0.5 * np.minimum(st.dpd, 4) + 0.8 * st.util
    u = u + rng.normal(0, 0.5, n)
    logits = np.stack([1.2 - 1.2 * u, 0.2 + 0.3 * u, np.full(n, 0.4), -2.2 + 1.3 * u])
    probs = np.exp(logits - logits.max(axis=0))
    probs /= probs.sum(axis=0)
    kind = (rng.random(n)[None, :] > np.cumsum(probs, axis=0)).sum(axis=0)
    kind = np.minimum(kind, 3)
    partial = min_due + rng.random(n) * np.maximum(balance - min_due, 0)
    paid = np.select([kind == 0, kind == 1, kind == 2], [balance, min_due, partial], 0.0)
    paid = np.where(owed, np.round(np.minimum(paid, balance), 2), 0.0)
    missed = owed & (paid + 0.005 < min_due)
    st.dpd = np.where(missed, st.dpd + 1, np.where(owed, 0, st.dpd))
    st.paid_full_prev = owed & (paid + 0.005 >= balance)
    idx = np.nonzero(owed & (paid > 0))[0]
    secs = start_s + rng.integers(14, 24, len(idx)) * _DAY + rng.integers(0, _DAY, len(idx))
    prev_stmt = np.full(len(idx), float(start_s - _DAY + 23 * 3600))
    parts.append(_Block(idx, secs, np.full(len(idx), 3), paid[idx], np.zeros(len(idx)), prev_stmt))
    carry = balance - paid
    past_due = np.where(missed, np.maximum(min_due - paid, 0), 0.0)
    carry = np.where(carry > 0, carry * (1 + APR / 12), carry) + np.where(missed, LATE_FEE, 0.0)
    return carry, past_due, missed


def _purchases(
    rng: np.random.Generator,
    config: SyntheticConfig,
    acc: _Accounts,
    st: _State,
    shock: np.ndarray,
    carry: np.ndarray,
    start_s: int,
    days_in_month: int,
    parts: list[_Block],
) -> np.ndarray:
    """This month's purchases within the available credit; returns each account's spend."""
    n, z, limit = acc.n, acc.z, acc.limit
    lam = config.purchases_per_month * acc.spend_rate * np.where(shock, 1.5, 1.0)
    lam = np.where(st.dpd >= 3, 0.0, lam)
    counts = rng.poisson(lam)
    idx = np.repeat(np.arange(n), counts)
    cat_p = np.broadcast_to(_CATEGORY_P, (len(idx), len(_CATEGORY_P))).copy()
    cat_p[:, _CASH] += np.where(shock[idx], 0.15, 0.0) + np.where(z[idx] > 1, 0.03, 0.0)
    cat_p /= cat_p.sum(axis=1, keepdims=True)
    cats = (rng.random(len(idx))[:, None] > np.cumsum(cat_p, axis=1)).sum(axis=1)
    cats = np.minimum(cats, len(MERCHANT_CATEGORIES) - 1)
    amounts = _TICKET[cats] * rng.lognormal(0, 0.6, len(idx)) * np.sqrt(limit[idx] / 5_000)
    spend = np.bincount(idx, weights=amounts, minlength=n)
    available = np.maximum(limit - np.maximum(carry, 0), 0)
    scale = np.where(spend > available, available / np.maximum(spend, 1e-9), 1.0)
    amounts = np.round(amounts * scale[idx], 2)
    keep = amounts >= 0.01
    idx, cats, amounts = idx[keep], cats[keep], amounts[keep]
    spend = np.bincount(idx, weights=amounts, minlength=n)
    st.purchases_total += np.bincount(idx, minlength=n)
    st.spend_total += spend
    secs = start_s + rng.integers(0, days_in_month, len(idx)) * _DAY
    secs += rng.integers(0, _DAY - 3600, len(idx))
    parts.append(_Block(idx, secs, np.full(len(idx), 1), amounts, cats.astype(float)))
    return spend


def _statement(
    acc: _Accounts,
    st: _State,
    carry: np.ndarray,
    spend: np.ndarray,
    past_due: np.ndarray,
    next_month_s: int,
) -> _Block:
    """The month-end statement of every account (no randomness)."""
    n = acc.n
    st.balance = np.round(carry + spend, 2)
    st.util = np.clip(st.balance / acc.limit, 0, 2)
    st.util_total += st.util
    min_due = np.where(
        st.balance > 0,
        np.minimum(
            st.balance, np.maximum(MIN_PAYMENT_FLOOR, MIN_PAYMENT_RATE * st.balance) + past_due
        ),
        0.0,
    )
    st.min_due = np.round(min_due, 2)
    status = np.where(
        (st.balance <= 0) & (spend == 0),
        -2,
        np.where(st.paid_full_prev, -1, np.where(st.dpd > 0, np.minimum(st.dpd, 9), 0)),
    )
    stmt_s = next_month_s - _DAY + 23 * 3600
    return _Block(
        np.arange(n),
        np.full(n, stmt_s),
        np.full(n, 2),
        st.balance,
        status.astype(float),
        st.min_due,
    )


def _hazards(
    acc: _Accounts, st: _State, months_seen: int, *, attainable: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """This month's true default hazard, and the attainable one: what the best model could know
    from the observable history (the module docstring, 4. and 5.); without ``attainable`` the
    second is the first (nothing is fitted)."""
    n, z = acc.n, acc.z
    missed_3 = np.sum(st.missed_hist[-3:], axis=0)
    logit = (
        HAZARD_INTERCEPT
        + 0.9 * z
        + 0.55 * np.minimum(st.dpd, 6)
        + 1.4 * (st.util - 0.3)
        + 0.9 * (st.shock_left > 0)
        + 0.35 * missed_3
        - 0.3 * np.log(acc.income / 48_000)
    )
    true_h = 1 / (1 + np.exp(-logit))
    if not attainable:
        return true_h, true_h
    hidden = 0.9 * z + 0.9 * (st.shock_left > 0)
    observable = logit - hidden
    summaries = np.column_stack(
        [
            np.ones(n),
            np.log(acc.income),
            np.log(acc.limit),
            np.minimum(st.dpd, 6),
            st.util,
            missed_3,
            st.missed_total,
            st.full_total,
            st.util_total / months_seen,
            st.purchases_total,
            st.spend_total / acc.limit,
        ]
    )
    coef, *_ = np.linalg.lstsq(summaries, hidden, rcond=None)
    predicted = summaries @ coef
    s2 = float(np.var(hidden - predicted))
    attainable_h = 1 / (1 + np.exp(-(observable + predicted) / np.sqrt(1 + np.pi * s2 / 8)))
    return true_h, attainable_h


def _choice_shifted(rng: np.random.Generator, p: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Categorical draw whose later categories become likelier as ``shift`` grows."""
    logits = np.log(p)[None, :] + shift[:, None] * np.linspace(-1, 1, len(p))[None, :]
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    out = (rng.random(len(shift))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    return np.minimum(out, len(p) - 1)


def _concat(parts: list[_Block]) -> _Block:
    def cat(name: str) -> np.ndarray:
        arrays = []
        for part in parts:
            value = getattr(part, name)
            arrays.append(value if len(value) == len(part.account) else np.zeros(len(part.account)))
        return np.concatenate(arrays)

    return _Block(
        cat("account").astype(np.int64),
        cat("seconds").astype(np.int64),
        cat("kind").astype(np.int64),
        cat("amount"),
        cat("extra"),
        cat("extra2"),
    )


def _iso(seconds: np.ndarray) -> list[str]:
    return [
        s + "Z" for s in np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    ]


_KINDS = ("account_opened", "purchase", "statement", "payment", "outcome")


def _event_id(config: SyntheticConfig, account: str, kind: str, when: str, n: int) -> str:
    return uuid5_text(f"{SOURCE}/{config.seed}/{account}/{kind}/{when}/{n}")


def _envelope(
    config: SyntheticConfig, kind: str, account: str, when: str, n: int, payload: dict[str, Any]
) -> dict[str, Any]:
    return envelope(_event_id(config, account, kind, when, n), kind, account, when, SOURCE, payload)


# Events are turned into dicts a slice of a month at a time: the text columns of a whole month
# of a large portfolio would hold hundreds of megabytes.
_SLICE = 50_000


def _stream(
    config: SyntheticConfig, account_ids: list[str], profile: pd.DataFrame
) -> Iterator[dict[str, Any]]:
    yield from _opened_events(config, profile)
    limits = profile["credit_limit"].tolist()
    for month in _months(config, attainable=False):
        yield from _block_events(config, account_ids, limits, month.block)


def _opened_events(config: SyntheticConfig, p: pd.DataFrame) -> Iterator[dict[str, Any]]:
    times = _iso(p["opened_s"].to_numpy())
    cols = zip(
        p["account_id"],
        times,
        p["credit_limit"].tolist(),
        p["income"].tolist(),
        p["age"].tolist(),
        p["sex"],
        p["education"],
        p["marital_status"],
        strict=True,
    )
    for account, when, limit, income, age, sex, edu, marital in cols:
        payload = {
            "credit_limit": limit,
            "income": income,
            "age": age,
            "sex": sex,
            "education": edu,
            "marital_status": marital,
        }
        yield _envelope(config, "account_opened", account, when, 0, payload)


def _block_events(
    config: SyntheticConfig, ids: list[str], limits: list[float], block: _Block
) -> Iterator[dict[str, Any]]:
    previous = (-1, "")
    counter = 0
    day = 86_400
    for lo in range(0, len(block.account), _SLICE):
        part = slice(lo, lo + _SLICE)
        times = _iso(block.seconds[part])
        rows = zip(
            block.account[part].tolist(),
            times,
            _iso(block.seconds[part] + 25 * day),
            block.kind[part].tolist(),
            block.amount[part].tolist(),
            block.extra[part].tolist(),
            block.extra2[part].tolist(),
            strict=True,
        )
        for acc, when, due_text, kind, amount, extra, extra2 in rows:
            counter = counter + 1 if (acc, when) == previous else 0
            previous = (acc, when)
            yield _envelope(
                config,
                _KINDS[kind],
                ids[acc],
                when,
                counter,
                _payload(kind, when[:10], due_text, limits[acc], amount, extra, extra2),
            )


def _payload(
    kind: int,
    day_text: str,
    due_text: str,
    limit: float,
    amount: float,
    extra: float,
    extra2: float,
) -> dict[str, Any]:
    if kind == 1:
        return {"amount": amount, "merchant_category": MERCHANT_CATEGORIES[int(extra)]}
    if kind == 2:
        return {
            "statement_date": day_text,
            "balance": amount,
            "minimum_due": extra2,
            "due_date": due_text[:10],
            "credit_limit": limit,
            "repayment_status": int(extra),
        }
    if kind == 3:
        paid_for = _iso(np.array([int(extra2)]))[0][:10]
        return {"amount": amount, "statement_date": paid_for}
    return {"default_flag": int(extra), "observed_date": day_text}
