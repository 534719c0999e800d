"""Preprocessing builders the kinds share (scikit-learn imported when one is built).

A missing category is its own category ``missing`` in both builders.
"""

from __future__ import annotations

from typing import Any


def _missing_as_category(encoder: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")), encoder])


def native_trees(numeric: list[str], categorical: list[str], variant: str | None = None) -> Any:
    """Trees: numerics as they are (XGBoost and scikit-learn's forests split on missing values
    natively), categoricals as ordinal codes (an unseen category is -1). A kind's ``preprocess``
    as it is (:data:`modelkinds.base.Preprocess`): trees have no variants, ``variant`` is unused."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", "passthrough", numeric))
    if categorical:
        ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        parts.append(("cat", _missing_as_category(("ordinal", ordinal)), categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def linear(numeric: list[str], categorical: list[str], binned: bool) -> Any:
    """Linear models: median-imputed numerics with a missing-value indicator per column that has
    missing values, standardised; ``binned`` adds 10 quantile-bin indicators per numeric (a
    scorecard-style variant); one-hot categoricals (an unseen category is all zeros)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "num",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
        if binned:
            bins = KBinsDiscretizer(
                n_bins=10,
                encode="onehot",
                strategy="quantile",
                quantile_method="averaged_inverted_cdf",
            )
            parts.append(
                (
                    "bin",
                    Pipeline([("impute", SimpleImputer(strategy="median")), ("bins", bins)]),
                    numeric,
                )
            )
    if categorical:
        onehot = OneHotEncoder(handle_unknown="ignore")
        parts.append(("cat", _missing_as_category(("onehot", onehot)), categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
