"""The whole ETL chain as pure DataFrame functions: event lines -> curated tables -> features.

The two Glue-style jobs run these same steps with I/O, bookmarks and the catalog around them
(raw_to_curated writes the curated tables in between); benchmarks and tests that need features
from events call :func:`events_to_features` instead of rebuilding the chain by hand. Pure module:
nothing here reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from etl import features, transforms

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def curate(
    lines: DataFrame, now: datetime, known_accounts: DataFrame | None = None
) -> dict[str, DataFrame]:
    """Raw lines (``value``, ``dt``, ``source_file``) -> the curated table of each event type:
    parsed, typed, validated and de-duplicated (``transforms``). The classified rows are cached:
    every table reads them."""
    validated = transforms.validate_events(transforms.parse_lines(lines), now)
    classified = transforms.classify_events(validated, known_accounts).cache()
    return {t: transforms.curated_table(classified, t) for t in transforms.EVENT_TYPES}


def observation_dates(tables: Mapping[str, DataFrame]) -> list[date]:
    """The default observation date of curated tables, or none (``features``)."""
    derived = features.default_observation_date(tables["statement"], tables["outcome"])
    return [] if derived is None else [derived]


def panel(
    tables: Mapping[str, DataFrame], windows: features.FeatureWindows | None = None
) -> tuple[list[date], int]:
    """The training panel's observation dates and the history rule (``features``)."""
    return features.panel_observation_dates(
        tables["statement"], tables["outcome"], windows or features.FeatureWindows()
    )


def features_of(
    tables: Mapping[str, DataFrame],
    obs_dates: Sequence[date],
    windows: features.FeatureWindows | None = None,
    *,
    attributes: dict[str, str] | None = None,
    labels_known_on: date | None = None,
    with_label: bool = True,
    min_history_months: int = 0,
) -> DataFrame:
    """Curated tables (by event type) -> the feature table at ``obs_dates``."""
    return features.build_features(
        tables["account_opened"],
        tables["statement"],
        tables["payment"],
        tables["purchase"],
        tables["outcome"],
        obs_dates,
        windows,
        with_label=with_label,
        attributes=attributes,
        labels_known_on=labels_known_on,
        min_history_months=min_history_months,
    )


def events_to_features(
    lines: DataFrame,
    now: datetime,
    obs_dates: Sequence[date] | None = None,
    windows: features.FeatureWindows | None = None,
    *,
    attributes: dict[str, str] | None = None,
    panel_dates: bool = False,
) -> tuple[DataFrame, list[date]]:
    """Event lines -> (the feature table, its observation dates): the chain the two jobs run, at
    ``obs_dates``, else the training panel's dates (``panel_dates``, what the features job
    derives) or the data's default observation date. Attributes are typed from the accounts
    opened when not given (``features.attribute_columns``)."""
    tables = curate(lines, now)
    history = 0
    if obs_dates:
        chosen = list(obs_dates)
    elif panel_dates:
        chosen, history = panel(tables, windows)
    else:
        chosen = observation_dates(tables)
    if not chosen:
        raise ValueError(
            "no observation date: no account has both statements and an outcome; pass obs_dates"
        )
    if attributes is None:
        attributes = features.attribute_columns(tables["account_opened"])
    frame = features_of(tables, chosen, windows, attributes=attributes, min_history_months=history)
    return frame, chosen
