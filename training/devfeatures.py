"""A feature table shaped like the ETL's, built straight from the Taiwan CSV.

For tests and benchmarks only, while or where the streaming pipeline has not run: same columns
as ``etl``'s Taiwan features (profile as strings, six monthly lags of bills, payments and
repayment status, aggregates), one row per client at one observation date.
:func:`taiwan_features` is pure; :func:`read_taiwan_features` also reads the local CSV.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

TAIWAN_OBS_DATE = dt.date(2005, 9, 30)

_SEX = {1: "male", 2: "female"}
_EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "others"}
_MARITAL = {1: "married", 2: "single", 3: "others"}


def taiwan_features(raw: pd.DataFrame, obs_date: dt.date = TAIWAN_OBS_DATE) -> pd.DataFrame:
    """Turn the UCI table (``ID, LIMIT_BAL, ..., default payment next month``) into features."""
    pay_cols = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
    out = pd.DataFrame(
        {
            "account_id": "tw-" + raw["ID"].astype(str),
            "obs_date": obs_date,
            "label": raw["default payment next month"].astype("int64"),
            "source": "taiwan",
            "credit_limit": raw["LIMIT_BAL"].astype("float64"),
            "age": raw["AGE"].astype("float64"),
            "sex": raw["SEX"].map(_SEX).fillna("unknown"),
            "education": raw["EDUCATION"].map(_EDUCATION).fillna("unknown"),
            "marital_status": raw["MARRIAGE"].map(_MARITAL).fillna("unknown"),
        }
    )
    bills = np.column_stack([raw[f"BILL_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    pays = np.column_stack([raw[f"PAY_AMT{m}"].to_numpy(float) for m in range(1, 7)])
    status = np.column_stack([raw[c].to_numpy(float) for c in pay_cols])
    for m in range(6):
        out[f"bill_amt_m{m + 1}"] = bills[:, m]
        out[f"pay_amt_m{m + 1}"] = pays[:, m]
        out[f"repayment_status_m{m + 1}"] = status[:, m]
    limit = np.maximum(out["credit_limit"].to_numpy(), 1.0)
    out["utilisation_m1"] = bills[:, 0] / limit
    out["utilisation_avg_6m"] = bills.mean(axis=1) / limit
    out["bill_trend_6m"] = (bills[:, 0] - bills[:, 5]) / limit
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bills[:, 1:] > 0, pays[:, :5] / bills[:, 1:], 1.0)
    out["payment_ratio_avg_5m"] = np.clip(ratio, 0, 10).mean(axis=1)
    out["pay_amt_avg_6m"] = pays.mean(axis=1)
    out["months_delinquent_6m"] = (status > 0).sum(axis=1).astype("int64")
    out["max_delinquency_6m"] = status.max(axis=1)
    out["status_trend_3m"] = status[:, 0] - status[:, 2]
    _history(out, bills, pays, status, limit)
    return out


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
    unpaid = (bills - pays) / limit[:, None]
    out["unpaid_to_limit_m1"] = unpaid[:, 0]
    out["unpaid_to_limit_avg"] = unpaid.mean(axis=1)
    out["bill_growth_1m"] = (bills[:, 0] - bills[:, 1]) / limit
    out["bill_volatility"] = (bills / limit[:, None]).std(axis=1)
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
