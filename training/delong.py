"""DeLong, DeLong & Clarke-Pearson (1988): ROC-AUC variance and the paired test (pure).

Uses the fast midrank formulation (Sun & Xu, 2014), O(n log n). For two scores on the same rows,
the AUC difference divided by its standard error (the structural-component covariance) is
asymptotically standard normal under "equal AUCs".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class PairedAuc:
    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    se: float
    z: float
    p_two_sided: float
    p_one_sided: float  # H1: auc_a > auc_b
    n_pos: int
    n_neg: int


def _midranks(x: np.ndarray) -> np.ndarray:
    return np.asarray(rankdata(x, method="average"), dtype=float)


def _structural(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,), V10 (k, m positives), V01 (k, n negatives) for k score vectors."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    k = scores.shape[0]
    aucs = np.empty(k)
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    for r in range(k):
        tx, ty = _midranks(pos[r]), _midranks(neg[r])
        tz = _midranks(np.concatenate([pos[r], neg[r]]))
        aucs[r] = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    return aucs, v10, v01


def _check(y: np.ndarray, scores: list[np.ndarray]) -> np.ndarray:
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("DeLong needs both classes among the rows")
    for s in scores:
        if len(s) != len(y):
            raise ValueError(f"scores have {len(s)} rows, labels {len(y)}: not the same rows")
    return y


def auc_ci(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(AUC, lower, upper): DeLong standard error, normal interval clipped to [0, 1]."""
    y = _check(y, [p])
    aucs, v10, v01 = _structural(y, np.asarray(p, dtype=float)[None, :])
    var = np.var(v10[0], ddof=1) / v10.shape[1] + np.var(v01[0], ddof=1) / v01.shape[1]
    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(max(var, 0.0))
    auc = float(aucs[0])
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def paired_test(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> PairedAuc:
    """DeLong's test of AUC(a) vs AUC(b) on the same rows."""
    y = _check(y, [p_a, p_b])
    scores = np.vstack([np.asarray(p_a, dtype=float), np.asarray(p_b, dtype=float)])
    aucs, v10, v01 = _structural(y, scores)
    s10, s01 = np.cov(v10), np.cov(v01)
    m, n = v10.shape[1], v01.shape[1]
    contrast = np.array([1.0, -1.0])
    var = float(contrast @ (s10 / m + s01 / n) @ contrast)
    diff = float(aucs[0] - aucs[1])
    se = math.sqrt(max(var, 0.0))
    z = 0.0 if se == 0.0 else diff / se  # identical rankings: no evidence either way
    return PairedAuc(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        diff=diff,
        se=se,
        z=z,
        p_two_sided=float(2 * norm.sf(abs(z))),
        p_one_sided=float(norm.sf(z)),
        n_pos=int(m),
        n_neg=int(n),
    )
