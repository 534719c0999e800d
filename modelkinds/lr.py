"""Logistic regression: a linear model on standardised (optionally quantile-binned) inputs.

Explained by its terms ``coef * (x - reference)`` on the preprocessed matrix, in log-odds. The
reference is 0 there: for standardised columns that is the training mean (the scaler subtracts
it), for one-hot and bin indicator columns "not this category" (the fitted pipeline does not
carry the category frequencies).
"""

from __future__ import annotations

from typing import Any

from modelkinds.base import CompiledEstimator, FitOptions, ModelKind, NotCompilable

VARIANTS = ("scaled", "binned")


def preprocess(numeric: list[str], categorical: list[str], variant: str | None) -> Any:
    from modelkinds.parts.preprocess import linear

    variant = variant or VARIANTS[0]
    if variant not in VARIANTS:
        raise ValueError(f"unknown lr variant {variant!r}; use 'scaled' or 'binned'")
    return linear(numeric, categorical, binned=variant == "binned")


def estimator(params: dict[str, Any], options: FitOptions) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(class_weight="balanced", max_iter=2000, **params)


def contributions(model: Any, xt: Any, exact: bool) -> Any:
    import numpy as np
    from scipy import sparse

    coef = np.asarray(model.coef_, dtype=np.float64)[0]
    if sparse.issparse(xt):
        return np.asarray(sparse.csr_matrix(xt).multiply(coef).todense())
    return np.asarray(xt, dtype=np.float64) * coef


def compile_estimator(model: Any) -> CompiledEstimator:
    import numpy as np
    from scipy.special import expit

    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] != 1:
        raise NotCompilable("multiclass logistic regression is not supported")

    def decision(x: np.ndarray) -> np.ndarray:
        return np.asarray(x @ coef.T + intercept).ravel()

    return CompiledEstimator(
        raw=decision,
        proba=lambda x: expit(decision(x)),
        contribs=lambda x: x * coef[0],
        reason_method=KIND.reason_method,
    )


KIND = ModelKind(
    name="lr",
    label="Logistic Regression",
    order=10,
    estimator_classes=("LogisticRegression",),
    default_params={"variant": "binned", "C": 0.01},
    library_defaults={"variant": "scaled"},
    search_space={"variant": list(VARIANTS), "C": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
    preprocess=preprocess,
    estimator=estimator,
    compile=compile_estimator,
    contributions=contributions,
    reason_method="coef x (x - training mean) on the preprocessed matrix",
)
