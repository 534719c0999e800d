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
4. **Default**, observed at the end of the month after the last activity month, is Bernoulli with

   ``logit(PD) = -3.2 + 0.9 z + 0.55 min(cycles_delinquent, 6) + 1.4 (utilisation - 0.3)
                 + 0.9 shock_active + 0.35 missed_payments_last_3 - 0.3 log(income / 48,000)``

   so the stream carries real but imperfect signal (``z`` and shocks are hidden). That PD is
   returned as the oracle, never put into an event.
5. **An attainable ceiling** (``attainable_pd`` in the oracle): the best PD a model could give from
   what the stream shows. The hidden part of the logit, ``h = 0.9 z + 0.9 shock_active``, is
   replaced by its best linear prediction from observable per-account summaries of the whole
   history (log income and limit, final delinquency, utilisation and missed payments in the last
   three months, and over all months: missed payments, payments in full, mean utilisation,
   purchase count, spend / limit), fitted by least squares on the portfolio itself (the
   generator knows ``h``); the residual variance ``s2`` is integrated out with the probit
   approximation ``sigmoid(mu / sqrt(1 + pi s2 / 8))``. Its AUC on a set of accounts is the
   ceiling the ``model.synthetic.gap`` benchmark compares models with: a model can only beat it
   by finding non-linear evidence the linear projection misses.

Every event id is a uuid5 of (source, seed, account, type, time, index), so the same seed replays
exactly the same events and ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from ingestion.ids import uuid5_text
from riskstream.events import MERCHANT_CATEGORIES, SCHEMA_VERSION

SOURCE = "synthetic"

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
PD_INTERCEPT = -3.2


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a portfolio. ``start`` is the first day of the first activity month."""

    accounts: int = 2000
    months: int = 12
    seed: int = 7
    start: date = date(2024, 1, 1)
    purchases_per_month: float = 4.0

    def __post_init__(self) -> None:
        if not 1 <= self.accounts <= 5_000_000:
            raise ValueError(f"accounts={self.accounts} must be between 1 and 5,000,000")
        if not 2 <= self.months <= 120:
            raise ValueError(f"months={self.months} must be between 2 and 120")
        if self.start.day != 1:
            raise ValueError(f"start={self.start} must be the first day of a month")
        if not 0 < self.purchases_per_month <= 100:
            raise ValueError(f"purchases_per_month={self.purchases_per_month} must be in (0, 100]")


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
    """The simulated portfolio: ``events()`` to stream, ``oracle`` to keep beside the stream."""

    config: SyntheticConfig
    account_ids: list[str]
    profile: pd.DataFrame
    oracle: pd.DataFrame  # account_id, true_pd, observed_date, default_flag
    blocks: list[_Block]

    @property
    def n_events(self) -> int:
        return self.config.accounts + sum(len(b.account) for b in self.blocks)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event in time order per account: opened, then month by month, then outcomes."""
        yield from _opened_events(self)
        for block in self.blocks:
            yield from _block_events(self, block)


def simulate(config: SyntheticConfig) -> SyntheticPortfolio:
    """Run the simulation described in the module docstring."""
    rng = np.random.default_rng(config.seed)
    n = config.accounts
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

    account_ids = [f"SYN{i:07d}" for i in range(n)]
    month0 = np.datetime64(config.start, "M")
    epoch = np.datetime64(0, "s")

    def month_start_s(m: int) -> int:
        return int(((month0 + m).astype("datetime64[s]") - epoch).astype(np.int64))

    # state
    balance = np.zeros(n)  # last statement balance
    min_due = np.zeros(n)
    dpd = np.zeros(n, dtype=int)  # cycles delinquent
    shock_left = np.zeros(n, dtype=int)
    missed_hist: list[np.ndarray] = []
    paid_full_prev = np.zeros(n, dtype=bool)
    blocks: list[_Block] = []
    util = np.zeros(n)
    day = 86_400
    # observable summaries for the attainable ceiling (see the module docstring, 5.)
    missed_total = np.zeros(n)
    full_total = np.zeros(n)
    util_total = np.zeros(n)
    purchases_total = np.zeros(n)
    spend_total = np.zeros(n)

    for m in range(config.months):
        start_s = month_start_s(m)
        days_in_month = (month_start_s(m + 1) - start_s) // day
        # shocks
        new_shock = (shock_left == 0) & (rng.random(n) < 0.012 * np.exp(0.5 * z))
        shock_left = np.where(new_shock, rng.integers(3, 10, n), shock_left)
        shock = shock_left > 0
        parts: list[_Block] = []

        # payment of last month's statement, 15-24 days into this month
        carry = balance.copy()
        missed = np.zeros(n, dtype=bool)
        if m > 0:
            owed = balance > 0
            u = (
                0.9 * z
                + 1.5 * shock
                + 0.5 * np.minimum(dpd, 4)
                + 0.8 * util
                + rng.normal(0, 0.5, n)
            )
            logits = np.stack([1.2 - 1.2 * u, 0.2 + 0.3 * u, np.full(n, 0.4), -2.2 + 1.3 * u])
            probs = np.exp(logits - logits.max(axis=0))
            probs /= probs.sum(axis=0)
            kind = (rng.random(n)[None, :] > np.cumsum(probs, axis=0)).sum(axis=0)
            kind = np.minimum(kind, 3)
            partial = min_due + rng.random(n) * np.maximum(balance - min_due, 0)
            paid = np.select([kind == 0, kind == 1, kind == 2], [balance, min_due, partial], 0.0)
            paid = np.where(owed, np.round(np.minimum(paid, balance), 2), 0.0)
            missed = owed & (paid + 0.005 < min_due)
            dpd = np.where(missed, dpd + 1, np.where(owed, 0, dpd))
            paid_full_prev = owed & (paid + 0.005 >= balance)
            pay_mask = owed & (paid > 0)
            idx = np.nonzero(pay_mask)[0]
            secs = start_s + rng.integers(14, 24, len(idx)) * day + rng.integers(0, day, len(idx))
            prev_stmt = np.full(len(idx), float(start_s - day + 23 * 3600))
            parts.append(
                _Block(idx, secs, np.full(len(idx), 3), paid[idx], np.zeros(len(idx)), prev_stmt)
            )
            carry = balance - paid
            past_due = np.where(missed, np.maximum(min_due - paid, 0), 0.0)
            carry = np.where(carry > 0, carry * (1 + APR / 12), carry) + np.where(
                missed, LATE_FEE, 0.0
            )
        else:
            past_due = np.zeros(n)
        missed_hist.append(missed)
        missed_total += missed
        full_total += paid_full_prev

        # purchases
        lam = config.purchases_per_month * spend_rate * np.where(shock, 1.5, 1.0)
        lam = np.where(dpd >= 3, 0.0, lam)
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
        purchases_total += np.bincount(idx, minlength=n)
        spend_total += spend
        secs = start_s + rng.integers(0, days_in_month, len(idx)) * day
        secs += rng.integers(0, day - 3600, len(idx))
        parts.append(_Block(idx, secs, np.full(len(idx), 1), amounts, cats.astype(float)))

        # statement at month end
        balance = np.round(carry + spend, 2)
        util = np.clip(balance / limit, 0, 2)
        util_total += util
        min_due = np.where(
            balance > 0,
            np.minimum(
                balance, np.maximum(MIN_PAYMENT_FLOOR, MIN_PAYMENT_RATE * balance) + past_due
            ),
            0.0,
        )
        min_due = np.round(min_due, 2)
        status = np.where(
            (balance <= 0) & (spend == 0),
            -2,
            np.where(paid_full_prev, -1, np.where(dpd > 0, np.minimum(dpd, 9), 0)),
        )
        stmt_s = month_start_s(m + 1) - day + 23 * 3600
        all_idx = np.arange(n)
        parts.append(
            _Block(
                all_idx,
                np.full(n, stmt_s),
                np.full(n, 2),
                balance,
                status.astype(float),
                min_due,
            )
        )
        blocks.append(_concat(parts).sorted())

    # outcome at the end of the month after the last activity month
    missed_3 = np.sum(missed_hist[-3:], axis=0)
    logit = (
        PD_INTERCEPT
        + 0.9 * z
        + 0.55 * np.minimum(dpd, 6)
        + 1.4 * (util - 0.3)
        + 0.9 * (shock_left > 0)
        + 0.35 * missed_3
        - 0.3 * np.log(income / 48_000)
    )
    true_pd = 1 / (1 + np.exp(-logit))
    hidden = 0.9 * z + 0.9 * (shock_left > 0)
    observable = logit - hidden
    summaries = np.column_stack(
        [
            np.ones(n),
            np.log(income),
            np.log(limit),
            np.minimum(dpd, 6),
            util,
            missed_3,
            missed_total,
            full_total,
            util_total / config.months,
            purchases_total,
            spend_total / limit,
        ]
    )
    coef, *_ = np.linalg.lstsq(summaries, hidden, rcond=None)
    predicted = summaries @ coef
    s2 = float(np.var(hidden - predicted))
    attainable_pd = 1 / (1 + np.exp(-(observable + predicted) / np.sqrt(1 + np.pi * s2 / 8)))
    default = (rng.random(n) < true_pd).astype(int)
    observed_s = month_start_s(config.months + 1) - day
    observed_date = (epoch + np.timedelta64(observed_s, "s")).astype("datetime64[D]").item()
    blocks.append(
        _Block(
            np.arange(n),
            np.full(n, observed_s + 23 * 3600 + 59 * 60 + 59),
            np.full(n, 4),
            np.zeros(n),
            default.astype(float),
        )
    )
    first_month_s = month_start_s(0)
    profile = pd.DataFrame(
        {
            "account_id": account_ids,
            "opened_s": first_month_s - opened_days * day + 10 * 3600,
            "credit_limit": limit,
            "income": income,
            "age": age,
            "sex": np.array(SEX)[sex],
            "education": np.array(EDUCATION)[education],
            "marital_status": np.array(MARITAL)[marital],
        }
    )
    oracle = pd.DataFrame(
        {
            "account_id": pd.Series(account_ids, dtype="string"),
            "true_pd": true_pd.astype(float),
            "attainable_pd": attainable_pd.astype(float),
            "observed_date": pd.Series([observed_date] * n, dtype="object"),
            "default_flag": default,
        }
    )
    return SyntheticPortfolio(config, account_ids, profile, oracle, blocks)


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
    return {
        "event_id": _event_id(config, account, kind, when, n),
        "event_type": kind,
        "account_id": account,
        "event_time": when,
        "schema_version": SCHEMA_VERSION,
        "source": SOURCE,
        "payload": payload,
    }


def _opened_events(portfolio: SyntheticPortfolio) -> Iterator[dict[str, Any]]:
    p = portfolio.profile
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
        yield _envelope(portfolio.config, "account_opened", account, when, 0, payload)


def _block_events(portfolio: SyntheticPortfolio, block: _Block) -> Iterator[dict[str, Any]]:
    config = portfolio.config
    ids = portfolio.account_ids
    limits = portfolio.profile["credit_limit"].tolist()
    times = _iso(block.seconds)
    dates = [t[:10] for t in times]
    day = 86_400
    due = _iso(block.seconds + 25 * day)
    previous = (-1, "")
    counter = 0
    rows = zip(
        block.account.tolist(),
        times,
        dates,
        due,
        block.kind.tolist(),
        block.amount.tolist(),
        block.extra.tolist(),
        block.extra2.tolist(),
        strict=True,
    )
    for acc, when, day_text, due_text, kind, amount, extra, extra2 in rows:
        counter = counter + 1 if (acc, when) == previous else 0
        previous = (acc, when)
        account = ids[acc]
        name = _KINDS[kind]
        payload: dict[str, Any]
        if kind == 1:
            payload = {"amount": amount, "merchant_category": MERCHANT_CATEGORIES[int(extra)]}
        elif kind == 2:
            payload = {
                "statement_date": day_text,
                "balance": amount,
                "minimum_due": extra2,
                "due_date": due_text[:10],
                "credit_limit": limits[acc],
                "repayment_status": int(extra),
            }
        elif kind == 3:
            paid_for = _iso(np.array([int(extra2)]))[0][:10]
            payload = {"amount": amount, "statement_date": paid_for}
        else:
            payload = {"default_flag": int(extra), "observed_date": day_text}
        yield _envelope(config, name, account, when, counter, payload)
