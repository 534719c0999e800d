"""Pure portfolio figures for the analyst dashboard, from one or two scores partitions.

Expected loss = sum over accounts of PD x EAD x LGD, with EAD the account's exposure (its credit
limit when the features carry one) and LGD a single configurable loss-given-default (1.0 by
default: the loss before any recovery).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from serving.scoring import TIER_NAMES

HIST_EDGES = list(range(300, 851, 25))
HIGH_RISK_ROWS = 50


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def kpis(scores: pd.DataFrame, lgd: float = 1.0) -> dict[str, Any]:
    pd_values = scores["pd"].astype(float)
    exposure = (
        scores["exposure"].astype(float)
        if "exposure" in scores.columns
        else pd.Series(np.nan, index=scores.index)
    )
    labels = (
        pd.to_numeric(scores["label"], errors="coerce")
        if "label" in scores.columns
        else pd.Series(dtype=float)
    )
    known = labels.dropna()
    return {
        "accounts": len(scores),
        "exposure": _num(exposure.sum(min_count=1)),
        "expected_loss": _num((pd_values * exposure * lgd).sum(min_count=1)),
        "lgd": lgd,
        "predicted_default_rate": _num(pd_values.mean()),
        "observed_default_rate": _num(known.mean()) if len(known) else None,
        "labelled_accounts": len(known),
        "declines": int((scores["decision"] == "decline").sum()),
    }


def tier_distribution(scores: pd.DataFrame, names: Sequence[str] = TIER_NAMES) -> list[dict]:
    total = max(len(scores), 1)
    out = []
    for tier in names:
        part = scores[scores["risk_tier"] == tier]
        out.append(
            {
                "tier": tier,
                "count": len(part),
                "share": len(part) / total,
                "mean_pd": _num(part["pd"].mean()) if len(part) else None,
            }
        )
    return out


def histogram(scores: pd.DataFrame, edges: Sequence[int] = HIST_EDGES) -> dict[str, Any]:
    counts, _ = np.histogram(scores["score"].astype(float), bins=np.asarray(edges, dtype=float))
    return {"edges": list(edges), "counts": [int(c) for c in counts]}


def migration(
    previous: pd.DataFrame | None, latest: pd.DataFrame, names: Sequence[str] = TIER_NAMES
) -> dict[str, Any] | None:
    """Counts of accounts by (previous tier, latest tier), for accounts in both runs."""
    if previous is None:
        return None
    joined = previous[["account_id", "risk_tier"]].merge(
        latest[["account_id", "risk_tier"]], on="account_id", suffixes=("_prev", "_now")
    )
    index = {n: i for i, n in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for (a, b), n in joined.groupby(["risk_tier_prev", "risk_tier_now"]).size().items():
        if a in index and b in index:
            matrix[index[a]][index[b]] = int(n)
    down = sum(matrix[i][j] for i in range(len(names)) for j in range(len(names)) if j > i)
    up = sum(matrix[i][j] for i in range(len(names)) for j in range(len(names)) if j < i)
    return {
        "tiers": list(names),
        "matrix": matrix,
        "accounts": len(joined),
        "downgraded": down,
        "upgraded": up,
    }


def high_risk(scores: pd.DataFrame, rows: int = HIGH_RISK_ROWS) -> list[dict[str, Any]]:
    cols = [
        c
        for c in (
            "account_id",
            "score",
            "pd",
            "risk_tier",
            "decision",
            "exposure",
            "reason_1",
            "reason_2",
            "reason_3",
        )
        if c in scores.columns
    ]
    top = scores.sort_values(["pd", "account_id"], ascending=[False, True]).head(rows)[cols]
    records = top.astype(object).where(top.notna(), None).to_dict("records")
    for r in records:
        r["score"] = int(r["score"])
        r["pd"] = float(r["pd"])
        if r.get("exposure") is not None:
            r["exposure"] = float(r["exposure"])
    return records


def psi_history(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rep in reports:
        score = rep.get("score") or {}
        out.append(
            {
                "score_date": rep.get("score_date"),
                "model_version": rep.get("model_version"),
                "psi_score": score.get("psi"),
                "flag": bool(rep.get("flag")),
                "features": {k: v.get("psi") for k, v in (rep.get("features") or {}).items()},
            }
        )
    return sorted(out, key=lambda r: str(r["score_date"]))


def summary(
    latest: pd.DataFrame,
    previous: pd.DataFrame | None,
    reports: Sequence[dict[str, Any]],
    *,
    score_date: str,
    previous_date: str | None,
    lgd: float = 1.0,
) -> dict[str, Any]:
    """Everything the dashboard page shows, as JSON-ready values."""
    model = {}
    if len(latest):
        model = {
            "name": str(latest["model_name"].iloc[0]),
            "version": str(latest["model_version"].iloc[0]),
        }
    return {
        "score_date": score_date,
        "previous_date": previous_date,
        "model": model,
        "kpis": kpis(latest, lgd),
        "tiers": tier_distribution(latest),
        "histogram": histogram(latest),
        "migration": migration(previous, latest),
        "psi": psi_history(reports),
        "high_risk": high_risk(latest),
    }
