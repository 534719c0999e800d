"""The feature table made ready for training: one portfolio's labelled rows, its model inputs
(no protected attribute, identifier, empty or constant column) and the split (I/O: reads S3)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from riskstream import names
from riskstream.settings import Settings
from training.config import TrainingConfig, TrainingError
from training.data import (
    FeatureTable,
    default_features_uri,
    read_feature_table,
)
from training.dataset import (
    KEY_COLUMNS,
    FeatureColumns,
    TrainingDataError,
    feature_columns,
    labelled,
    split_rows,
)
from training.lawful import InputPolicy, InputSelection, select_inputs
from training.tracking import _client

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    table: FeatureTable
    columns: FeatureColumns
    train: pd.DataFrame
    test: pd.DataFrame
    split_description: dict[str, object]
    inputs: InputSelection
    dropped_empty: tuple[str, ...] = ()
    portfolio: str = ""
    # the test accounts' rows at the training dates (out_of_time only): the in-time check
    in_time: pd.DataFrame | None = None

    def features_document(self, config: TrainingConfig) -> dict[str, object]:
        """``features.json``: what the model reads, and what was kept out of it and why."""
        return {
            "features": self.columns.all,
            "numeric": list(self.columns.numeric),
            "categorical": list(self.columns.categorical),
            "protected_present_not_inputs": list(self.inputs.protected),
            "identifiers_not_inputs": list(self.inputs.identifiers),
            "dropped_all_empty_or_constant": list(self.dropped_empty),
            "portfolio": self.portfolio,
            "policy": config.inputs.describe(),
        }


def select_columns(
    rows: pd.DataFrame, policy: InputPolicy, where: str
) -> tuple[FeatureColumns, InputSelection, tuple[str, ...]]:
    """The model inputs of a labelled table: no protected attribute, no identifier, no column
    that is empty or constant in every row (one note says which were dropped: a flat applicant
    table has no statement history, so its history features are all empty)."""
    candidates = [c for c in rows.columns if c not in KEY_COLUMNS]
    selection = select_inputs(candidates, policy)
    empty = tuple(c for c in selection.features if rows[c].nunique(dropna=False) <= 1)
    if empty:
        logger.info(
            "%d columns are empty or constant in every labelled row, not model inputs: %s",
            len(empty),
            ", ".join(empty),
        )
    usable = [c for c in selection.features if c not in empty]
    if not usable:
        raise TrainingDataError(
            f"feature table {where} has no usable model input: of {candidates}, protected "
            f"{list(selection.protected)}, identifiers {list(selection.identifiers)}, empty "
            f"{list(empty)}; add evidence columns (or set RISKSTREAM_ALLOW_AGE=1 where the law "
            "allows age)"
        )
    return feature_columns(rows[usable]), selection, empty


def prepare(settings: Settings, features_uri: str, config: TrainingConfig) -> Prepared:
    table = read_feature_table(settings, features_uri)
    check_portfolio(table.frame, settings.portfolio, table.uri)
    rows = labelled(table.frame, table.uri)
    columns, selection, empty = select_columns(rows, config.inputs, table.uri)
    # Integers become doubles: a missing value at scoring time must not break the signature.
    for name in columns.numeric:
        if not pd.api.types.is_float_dtype(rows[name].dtype):
            rows[name] = rows[name].astype("float64")
    split = split_rows(rows, config.test_size, config.seed, config.split)
    return Prepared(
        table,
        columns,
        rows.iloc[split.train_index].reset_index(drop=True),
        rows.iloc[split.test_index].reset_index(drop=True),
        split.description,
        selection,
        empty,
        settings.portfolio,
        rows.iloc[split.in_time_index].reset_index(drop=True),
    )


def check_portfolio(frame: pd.DataFrame, portfolio: str, where: str) -> None:
    """A model is trained on one portfolio's rows only: refuse a table holding another's."""
    if "source" not in frame.columns or frame.empty:
        return
    found = sorted(str(v) for v in frame["source"].dropna().unique())
    if found != [portfolio]:
        raise TrainingDataError(
            f"feature table {where} holds rows of portfolio(s) {found}, not only {portfolio!r}: "
            "train each portfolio on its own features (names.features_location)"
        )


def _prepare_for_parent(
    settings: Settings, parent_run_id: str
) -> tuple[Any, TrainingConfig, Prepared]:
    client = _client(settings)
    parent = client.get_run(parent_run_id)
    config = TrainingConfig.from_params(parent.data.params)
    uri = parent.data.tags.get(names.TAG_FEATURES_URI) or default_features_uri(settings)
    prepared = prepare(settings, uri, config)
    expected = parent.data.tags.get(names.TAG_FEATURES_DIGEST)
    if expected and prepared.table.digest != expected:
        raise TrainingError(
            f"the feature table {uri} changed since training run {parent_run_id} started "
            f"(digest {prepared.table.digest} != {expected}); start a new training execution"
        )
    return parent, config, prepared
