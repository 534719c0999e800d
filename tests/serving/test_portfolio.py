"""Dashboard figures on a hand-made scores table."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.portfolio import high_risk, histogram, kpis, migration, psi_history, tier_distribution

pytestmark = pytest.mark.unit

LATEST = pd.DataFrame(
    {
        "account_id": ["a", "b", "c"],
        "pd": [0.01, 0.2, 0.5],
        "score": [610, 530, 487],
        "risk_tier": ["Prime", "Subprime", "High risk"],
        "decision": ["approve", "approve", "decline"],
        "exposure": [1000.0, 2000.0, 4000.0],
        "label": pd.array([0, None, 1], dtype="Int64"),
        "reason_1": [None, "Age", "Bill amount, last month"],
        "model_name": "m",
        "model_version": "3",
    }
)


def test_kpis_by_hand() -> None:
    k = kpis(LATEST, lgd=0.5)
    assert k["accounts"] == 3
    assert k["exposure"] == 7000.0
    assert k["expected_loss"] == pytest.approx(0.5 * (10 + 400 + 2000))
    assert k["predicted_default_rate"] == pytest.approx(0.71 / 3)
    assert k["observed_default_rate"] == 0.5 and k["labelled_accounts"] == 2
    assert k["declines"] == 1


def test_tiers_histogram_migration_and_table() -> None:
    tiers = {t["tier"]: t["count"] for t in tier_distribution(LATEST)}
    assert tiers == {"Prime": 1, "Near-prime": 0, "Subprime": 1, "High risk": 1}
    hist = histogram(LATEST)
    assert sum(hist["counts"]) == 3 and hist["counts"][(610 - 300) // 25] == 1
    previous = LATEST.assign(risk_tier=["Prime", "Prime", "Subprime"])
    mig = migration(previous, LATEST)
    assert mig["matrix"][0][0] == 1 and mig["matrix"][0][2] == 1 and mig["matrix"][2][3] == 1
    assert mig["downgraded"] == 2 and mig["upgraded"] == 0 and mig["accounts"] == 3
    assert migration(None, LATEST) is None
    table = high_risk(LATEST, rows=2)
    assert [r["account_id"] for r in table] == ["c", "b"]
    assert table[0]["reason_1"] == "Bill amount, last month"


def test_psi_history_sorted_by_date() -> None:
    reports = [
        {"score_date": "2026-02-02", "score": {"psi": 0.3}, "flag": True, "features": {}},
        {"score_date": "2026-02-01", "score": {"psi": 0.01}, "flag": False, "features": {}},
    ]
    hist = psi_history(reports)
    assert [h["score_date"] for h in hist] == ["2026-02-01", "2026-02-02"]
    assert hist[1]["flag"] and hist[1]["psi_score"] == 0.3
