"""Small synthetic Taiwan-shaped feature tables and champion pipelines, for tests and benchmarks.

The features follow docs/CONTRACTS.md (account_id, obs_date, label, source + model features);
the label comes from a known logistic function of a few features, so fitted models have signal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = [
    "credit_limit",
    "age",
    *[f"bill_amt_m{i}" for i in range(1, 4)],
    *[f"pay_amt_m{i}" for i in range(1, 4)],
    *[f"repayment_status_m{i}" for i in range(1, 4)],
    "utilisation_avg_3m",
]
CATEGORICAL = ["education", "marital_status"]
EDUCATION = ["graduate_school", "university", "high_school", "other"]
MARITAL = ["married", "single", "other"]


def features_frame(n: int, obs_date: dt.date, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """``n`` accounts on ``obs_date``; ``shift`` moves the risk drivers (for drift tests)."""
    rng = np.random.default_rng(seed)
    limit = rng.choice([20_000, 50_000, 100_000, 200_000, 500_000], size=n).astype(np.float64)
    status = np.clip(rng.poisson(0.4 + shift, size=(n, 3)) - 1, -2, 8).astype(np.int64)
    bills = np.abs(rng.normal(0.4 + 0.2 * shift, 0.3, size=(n, 3))) * limit[:, None]
    pays = np.abs(rng.normal(0.05, 0.05, size=(n, 3))) * limit[:, None]
    edu = rng.choice(EDUCATION, size=n, p=[0.35, 0.45, 0.15, 0.05])
    logit = -1.6 + 0.9 * status[:, 0] + 0.4 * status[:, 1] - 0.000004 * limit
    logit += 1.2 * (bills[:, 0] / limit - 0.4) + 0.3 * (edu == "high_school")
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "account_id": [f"acct-{seed}-{i:07d}" for i in range(n)],
            "obs_date": pd.Series([obs_date] * n, dtype="object"),
            "label": label,
            "source": "synthetic",
            "credit_limit": limit,
            "age": rng.integers(21, 75, size=n).astype(np.int64),
        }
    )
    for i in range(3):
        frame[f"bill_amt_m{i + 1}"] = bills[:, i]
        frame[f"pay_amt_m{i + 1}"] = pays[:, i]
        frame[f"repayment_status_m{i + 1}"] = status[:, i]
    frame["utilisation_avg_3m"] = bills.mean(axis=1) / limit
    frame["education"] = edu
    frame["marital_status"] = rng.choice(MARITAL, size=n, p=[0.45, 0.5, 0.05])
    return frame


def make_pipeline(kind: str, seed: int = 0) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    model: Any
    if kind == "lr":
        model = LogisticRegression(max_iter=500)
    elif kind == "rf":
        model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=seed, n_jobs=1)
    elif kind == "xgb":
        from xgboost import XGBClassifier

        model = XGBClassifier(
            n_estimators=60, max_depth=4, learning_rate=0.2, n_jobs=1, random_state=seed
        )
    else:
        raise ValueError(kind)
    return Pipeline([("preprocess", preprocess), ("model", model)])


def fit_pipeline(
    kind: str, frame: pd.DataFrame, seed: int = 0, calibrated: bool = False
) -> Pipeline:
    """Fit on ``frame``; ``calibrated`` wraps the estimator as training does, with a sigmoid
    calibration on the last third of the rows."""
    pipeline = make_pipeline(kind, seed)
    x, y = frame[NUMERIC + CATEGORICAL], frame["label"]
    if not calibrated:
        pipeline.fit(x, y)
        return pipeline
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    cut = 2 * len(frame) // 3
    pre, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    model.fit(pre.fit_transform(x.iloc[:cut]), y.iloc[:cut])
    calibrated_model = CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid")
    calibrated_model.fit(pre.transform(x.iloc[cut:]), y.iloc[cut:])
    return Pipeline([("preprocess", pre), ("model", calibrated_model)])


def baseline_for(pipeline: Pipeline, frame: pd.DataFrame, bins: int = 10) -> dict[str, Any]:
    """A baseline.json as training writes it: 10 quantile bins of pd and of numeric features."""

    def entry(values: np.ndarray) -> dict[str, Any]:
        edges = np.quantile(values, np.linspace(0, 1, bins + 1))
        cuts = edges[1:-1]
        idx = np.searchsorted(cuts, values, side="right")
        props = np.bincount(idx, minlength=bins) / len(values)
        return {"edges": edges.tolist(), "proportions": props.tolist()}

    pd_values = pipeline.predict_proba(frame[NUMERIC + CATEGORICAL])[:, 1]
    return {
        "score": entry(pd_values),
        "features": {name: entry(frame[name].to_numpy(np.float64)) for name in NUMERIC},
    }
