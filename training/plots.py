"""Diagnostic plots for one model, as matplotlib figures (pure: the caller logs or saves them).

Figures are built with the object API (no pyplot, no display, no global state), so they work
headless and in parallel processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

from training.metrics import CostMatrix, cost_curve


def roc_figure(y: np.ndarray, p: np.ndarray, title: str, auc: float) -> Figure:
    fpr, tpr, _ = roc_curve(y, p)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"ROC-AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def calibration_figure(y: np.ndarray, p: np.ndarray, title: str, ece: float) -> Figure:
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(predicted, observed, marker="o", label=f"model (ECE {ece:.3f})")
    top = float(max(predicted.max(), observed.max(), 0.05))
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.set(
        xlabel="mean predicted PD", ylabel="observed default rate", title=f"Calibration: {title}"
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def cost_figure(
    y: np.ndarray, p: np.ndarray, costs: CostMatrix, threshold: float, title: str
) -> Figure:
    grid = np.linspace(0, 1, 201)
    thresholds, cost = cost_curve(y, p, costs, grid)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(thresholds, cost)
    ax.axvline(threshold, color="red", linestyle="--", label=f"chosen threshold {threshold:.3f}")
    ax.set(
        xlabel="reject when PD >= threshold",
        ylabel=f"mean cost per account (FN={costs.cost_fn:g}, FP={costs.cost_fp:g})",
        title=f"Expected cost by threshold: {title}",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, title: str, top: int = 20) -> Figure:
    shown = importance.head(top)[::-1]
    fig = Figure(figsize=(7, max(3, 0.3 * len(shown) + 1)))
    ax = fig.subplots()
    ax.barh(list(shown.index), shown.to_numpy())
    ax.set(xlabel="importance", title=f"Feature importance: {title}")
    fig.tight_layout()
    return fig
