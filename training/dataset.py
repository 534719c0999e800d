"""Feature-table rules for training (pure): which columns are features, checks, the split.

The features contract (docs/CONTRACTS.md): ``account_id``, ``obs_date``, ``label``, ``source`` and
every other column a feature, numeric or string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from riskstream import names

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
    """Row positions of train and test in the labelled table, and how they were chosen.

    ``in_time_index``: rows of the test accounts at the training dates (an in-time, out-of-sample
    check beside the out-of-time test; empty for a random split)."""

    strategy: str  # names.SPLIT_STRATEGIES
    train_index: np.ndarray
    test_index: np.ndarray
    description: dict[str, object]
    in_time_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


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


def split_rows(
    frame: pd.DataFrame,
    test_size: float = 1 / 3,
    seed: int = 42,
    strategy: str = names.DEFAULT_SPLIT,
) -> Split:
    """Train and test rows; the rows of one account never straddle the two.

    ``out_of_time`` (the default, with two or more observation dates): the test rows are the
    latest ``round(test_size x dates)`` observation dates (at least one, never all), of the
    accounts held out; training rows are the earlier dates of the other accounts. An account seen
    on both sides of the cut is held out with probability ``test_size`` (seeded, stratified by
    whether it ever defaulted); its earlier rows are the in-time check. ``stratified_random``
    (and any table of one observation date): a stratified random ``test_size`` share of the
    accounts, all their rows.
    """
    if strategy not in names.SPLIT_STRATEGIES:
        raise TrainingDataError(
            f"split strategy {strategy!r} is not known; use one of {list(names.SPLIT_STRATEGIES)}"
        )
    dates = pd.to_datetime(frame["obs_date"])
    distinct = sorted(dates.unique())
    accounts = frame["account_id"].astype(str).to_numpy()
    labels = frame["label"].to_numpy()
    if strategy == names.SPLIT_OUT_OF_TIME and len(distinct) >= 2:
        split = _out_of_time(frame, dates, distinct, accounts, test_size, seed)
    else:
        held = _held_out_accounts(pd.unique(accounts), accounts, labels, test_size, seed)
        test_mask = np.isin(accounts, held)
        split = Split(
            names.SPLIT_RANDOM,
            np.flatnonzero(~test_mask),
            np.flatnonzero(test_mask),
            {
                "strategy": names.SPLIT_RANDOM,
                "test_size": test_size,
                "seed": seed,
                "obs_dates": [_day(d) for d in distinct],
            },
        )
    for part, index in (("train", split.train_index), ("test", split.test_index)):
        part_labels = labels[index]
        if len(np.unique(part_labels)) < 2:
            raise TrainingDataError(
                f"the {part} part of the {split.strategy} split has {len(index)} rows and only "
                f"one class ({part_labels[0] if len(part_labels) else 'none'}); add labelled "
                "rows or observation dates"
            )
        split.description[f"{part}_rows"] = len(index)
        split.description[f"{part}_accounts"] = len(np.unique(accounts[index]))
        split.description[f"{part}_default_rate"] = round(float(part_labels.mean()), 6)
    split.description["in_time_rows"] = len(split.in_time_index)
    return split


def _day(value: object) -> str:
    return str(pd.Timestamp(value).date())  # type: ignore[arg-type]


def _held_out_accounts(
    candidates: np.ndarray, accounts: np.ndarray, labels: np.ndarray, share: float, seed: int
) -> np.ndarray:
    """A seeded ``share`` of ``candidates`` (in the order given), stratified by whether the
    account ever has label 1 (plain random when a class is too small to stratify)."""
    if len(candidates) == 0:
        return candidates
    ever = pd.Series(labels).groupby(accounts).max().reindex(candidates).to_numpy()
    counts = np.unique(ever, return_counts=True)[1]
    stratify = ever if len(counts) == 2 and counts.min() >= 2 else None
    if len(candidates) < 2:
        return candidates[:0]
    _, held = train_test_split(candidates, test_size=share, random_state=seed, stratify=stratify)
    return np.asarray(held)


def _out_of_time(
    frame: pd.DataFrame,
    dates: pd.Series,
    distinct: list[object],
    accounts: np.ndarray,
    test_size: float,
    seed: int,
) -> Split:
    n_test_dates = min(max(1, round(len(distinct) * test_size)), len(distinct) - 1)
    cut = distinct[-n_test_dates]
    late = (dates >= cut).to_numpy()
    early_accounts = set(accounts[~late])
    late_accounts = pd.unique(accounts[late])
    both = np.array([a for a in late_accounts if a in early_accounts], dtype=object)
    held = set(_held_out_accounts(both, accounts, frame["label"].to_numpy(), test_size, seed))
    held.update(a for a in late_accounts if a not in early_accounts)
    is_held = np.isin(accounts, np.array(sorted(held), dtype=object))
    test_mask = late & is_held
    train_mask = ~late & ~is_held
    in_time_mask = ~late & is_held
    return Split(
        names.SPLIT_OUT_OF_TIME,
        np.flatnonzero(train_mask),
        np.flatnonzero(test_mask),
        {
            "strategy": names.SPLIT_OUT_OF_TIME,
            "test_size": test_size,
            "seed": seed,
            "train_obs_dates": [_day(d) for d in distinct[:-n_test_dates]],
            "test_obs_dates": [_day(d) for d in distinct[-n_test_dates:]],
            "unused_rows": int((late & ~is_held).sum()),
        },
        np.flatnonzero(in_time_mask),
    )
