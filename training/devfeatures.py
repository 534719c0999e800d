"""A feature table shaped like the ETL's, built straight from the Taiwan CSV.

For tests and benchmarks only, while or where the streaming pipeline has not run: the same
columns and rules as ``etl``'s Taiwan features (profile as strings, six monthly lags of bills,
payments and repayment status, utilisation, payment-to-bill ratios, missed minimums, the
statement-history evidence), one row per client at one observation date.
:func:`taiwan_features` is pure; :func:`read_taiwan_features` also reads the local CSV.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from riskstream import names
from riskstream.events import MERCHANT_CATEGORIES

TAIWAN_OBS_DATE = dt.date(2005, 10, 1)  # the ETL derives it: the month after the last statement
TAIWAN_OPENED = dt.date(2005, 4, 1)  # ingestion.taiwan's account_opened time
TAIWAN_MINIMUM_DUE_RATE = 0.10  # ingestion.taiwan's documented rule

_SEX = {1: "male", 2: "female"}
_EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "other"}
_MARITAL = {1: "married", 2: "single", 3: "other"}


def taiwan_features(raw: pd.DataFrame, obs_date: dt.date = TAIWAN_OBS_DATE) -> pd.DataFrame:
    """Turn the UCI table (``ID, LIMIT_BAL, ..., default payment next month``) into the columns
    the ETL builds from the Taiwan replay (``ingestion.taiwan`` events through
    ``etl.features.build_features`` with its 6-month lookback), by the same rules: month 1 is
    September 2005; the payment of month k settles the statement of month k + 1; the replay's
    minimum due is 10% of a positive balance; there are no purchases (spend sums are zero, the
    spend mix is empty) and no income."""
    pay_cols = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
    limit_raw = raw["LIMIT_BAL"].to_numpy(float)
    out = pd.DataFrame(
        {
            "account_id": [f"TW{int(i):05d}" for i in raw["ID"]],  # the replay's ids
            "obs_date": obs_date,
            "label": raw["default payment next month"].astype("int64"),
            "source": names.SOURCE_TAIWAN,
            "months_on_book": _months_between(obs_date, TAIWAN_OPENED),
            "credit_limit_at_open": limit_raw,
            "income": np.nan,
            "age": raw["AGE"].astype("float64"),
            "sex": raw["SEX"].map(_SEX).fillna("unknown"),
            "education": raw["EDUCATION"].map(_EDUCATION).fillna("unknown"),
            "marital_status": raw["MARRIAGE"].map(_MARITAL).fillna("unknown"),
        }
    )
    bills = np.column_stack([raw[f"BILL_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    pays = np.column_stack([raw[f"PAY_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    status = np.column_stack([raw[c].to_numpy(float) for c in pay_cols])
    min_due = np.round(np.maximum(bills, 0.0) * TAIWAN_MINIMUM_DUE_RATE, 2)
    for m in range(6):
        out[f"bill_amt_m{m + 1}"] = bills[:, m]
        out[f"repayment_status_m{m + 1}"] = status[:, m]
        out[f"pay_amt_m{m + 1}"] = pays[:, m]
    out["statement_count"] = 6
    out["delinquent_months"] = (status >= 1).sum(axis=1).astype("int64")
    out["worst_delinquency"] = status.max(axis=1)
    out["statement_credit_limit"] = limit_raw  # every replayed statement states the limit
    out["credit_limit"] = limit_raw
    # no purchase events in the replay: the rolling sums are zero, ratios over them are empty
    out["spend_3m"] = 0.0
    out["spend_6m"] = 0.0
    out["spend_prev_3m"] = 0.0
    out["purchase_count_6m"] = 0
    out["avg_ticket_6m"] = np.nan
    for category in MERCHANT_CATEGORIES:
        out[f"spend_share_{category}"] = np.nan
    util = _ratio(bills, limit_raw[:, None])
    out["utilisation_m1"] = util[:, 0]
    out["utilisation_avg_3m"] = _ratio(bills[:, :3].mean(axis=1), limit_raw)
    out["utilisation_avg_6m"] = _ratio(bills.mean(axis=1), limit_raw)
    out["utilisation_trend_3m"] = util[:, 0] - util[:, 2]
    out["utilisation_trend_6m"] = util[:, 0] - util[:, 5]
    for k in range(1, 6):
        out[f"pay_to_bill_m{k}"] = _ratio(pays[:, k - 1], bills[:, k])
    out["pay_to_bill_avg"] = _ratio(
        pays[:, :5].sum(axis=1), np.maximum(bills[:, 1:], 0).sum(axis=1)
    )
    missed = (min_due[:, 1:] > 0) & (pays[:, :5] < min_due[:, 1:])
    out["missed_minimum_count"] = missed.sum(axis=1).astype("int64")
    _history(out, bills, pays, status, limit_raw)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive (as the ETL's)."""
    num, den = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _months_between(later: dt.date, earlier: dt.date) -> int:
    """Whole months from ``earlier`` to ``later`` (Spark's floor(months_between))."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    return months - (1 if later.day < earlier.day else 0)


def _history(
    out: pd.DataFrame, bills: np.ndarray, pays: np.ndarray, status: np.ndarray, limit: np.ndarray
) -> None:
    """The statement-history evidence of ``etl.features._history``, same names and rules."""
    late = status >= 1
    first = np.argmax(late, axis=1) + 1.0
    out["months_since_delinquency"] = np.where(late.any(axis=1), first, np.nan)
    run = np.zeros(len(out))
    longest = np.zeros(len(out))
    for k in range(status.shape[1]):
        run = np.where(late[:, k], run + 1, 0)
        longest = np.maximum(longest, run)
    out["longest_delinquent_run"] = longest
    full = (bills[:, 1:] > 0) & (pays[:, :-1] >= bills[:, 1:] - 0.005)
    out["paid_in_full_m1"] = full[:, 0].astype("float64")
    out["paid_in_full_count"] = full.sum(axis=1).astype("float64")
    unpaid = _ratio(bills - pays, limit[:, None])
    out["unpaid_to_limit_m1"] = unpaid[:, 0]
    out["unpaid_to_limit_avg"] = unpaid.mean(axis=1)
    out["bill_growth_1m"] = _ratio(bills[:, 0] - bills[:, 1], limit)
    out["bill_volatility"] = _ratio(bills, limit[:, None]).std(axis=1)
    out["status_delta_1m"] = status[:, 0] - status[:, 1]
    out["status_delta_3m"] = status[:, 0] - status[:, 2]


def read_taiwan_features(csv_path: str, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read the CSV (optionally a stratified sample of ``n_rows``) and build the features."""
    raw = pd.read_csv(csv_path)
    if n_rows is not None and n_rows < len(raw):
        frac = n_rows / len(raw)
        raw = raw.groupby("default payment next month", group_keys=False).sample(
            frac=frac, random_state=seed
        )
    return taiwan_features(raw.reset_index(drop=True))
