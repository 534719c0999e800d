"""Feature-table rules for training (pure): which columns are features, checks, the split.

The features contract (docs/CONTRACTS.md): ``account_id``, ``obs_date``, ``label``, ``source`` and
every other column a feature, numeric or string.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

KEY_COLUMNS: tuple[str, ...] = ("account_id", "obs_date", "label", "source")


class TrainingDataError(ValueError):
    """The feature table cannot be used to train; the message says what is wrong and the value."""


@dataclass(frozen=True)
class FeatureColumns:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class Split:
    """Row positions of train and test in the labelled table, and how they were chosen."""

    strategy: str  # "out_of_time" | "stratified_random"
    train_index: np.ndarray
    test_index: np.ndarray
    description: dict[str, object]


def feature_columns(frame: pd.DataFrame) -> FeatureColumns:
    """Numeric and categorical (string) feature columns, in table order."""
    numeric: list[str] = []
    categorical: list[str] = []
    for name in frame.columns:
        if name in KEY_COLUMNS:
            continue
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        elif pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            categorical.append(name)
        else:
            raise TrainingDataError(
                f"feature column {name!r} has type {dtype}; features must be numeric or string "
                "(see docs/CONTRACTS.md, Features)"
            )
    if not numeric and not categorical:
        raise TrainingDataError(
            f"the feature table has no feature columns (columns: {list(frame.columns)})"
        )
    return FeatureColumns(tuple(numeric), tuple(categorical))


def labelled(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows with a known 0/1 label; fails clearly when training is impossible."""
    missing = [c for c in ("account_id", "obs_date", "label") if c not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"feature table {where} lacks column(s) {missing}; columns are {list(frame.columns)}"
        )
    rows = frame[frame["label"].notna()].copy()
    if rows.empty:
        raise TrainingDataError(
            f"feature table {where} has no labelled rows ({len(frame)} rows in all); "
            "run the features job for an observation date whose outcome window has closed"
        )
    values = set(pd.unique(rows["label"]).tolist())
    if not values <= {0, 1}:
        raise TrainingDataError(f"label in {where} must be 0 or 1; found values {sorted(values)}")
    rows["label"] = rows["label"].astype("int64")
    if len(values) < 2:
        raise TrainingDataError(
            f"label in {where} has only one class ({values.pop()}) in {len(rows)} rows: a "
            "default model needs both defaulters and non-defaulters"
        )
    return rows.reset_index(drop=True)


def split_rows(frame: pd.DataFrame, test_size: float = 1 / 3, seed: int = 42) -> Split:
    """Out of time when there are several observation dates (test = the latest one),
    stratified at random otherwise (a held-out ``test_size`` share)."""
    dates = pd.to_datetime(frame["obs_date"])
    distinct = sorted(dates.unique())
    if len(distinct) >= 2:
        latest = distinct[-1]
        test_mask = (dates == latest).to_numpy()
        split = Split(
            "out_of_time",
            np.flatnonzero(~test_mask),
            np.flatnonzero(test_mask),
            {
                "strategy": "out_of_time",
                "train_obs_dates": [str(pd.Timestamp(d).date()) for d in distinct[:-1]],
                "test_obs_dates": [str(pd.Timestamp(latest).date())],
            },
        )
    else:
        train_idx, test_idx = train_test_split(
            np.arange(len(frame)),
            test_size=test_size,
            random_state=seed,
            stratify=frame["label"].to_numpy(),
        )
        split = Split(
            "stratified_random",
            np.sort(train_idx),
            np.sort(test_idx),
            {
                "strategy": "stratified_random",
                "test_size": test_size,
                "seed": seed,
                "obs_dates": [str(pd.Timestamp(d).date()) for d in distinct],
            },
        )
    for part, index in (("train", split.train_index), ("test", split.test_index)):
        labels = frame["label"].to_numpy()[index]
        if len(np.unique(labels)) < 2:
            raise TrainingDataError(
                f"the {part} part of the {split.strategy} split has {len(index)} rows and only "
                f"one class ({labels[0] if len(labels) else 'none'}); add labelled rows or "
                "observation dates"
            )
        split.description[f"{part}_rows"] = len(index)
        split.description[f"{part}_default_rate"] = round(float(labels.mean()), 6)
    return split
