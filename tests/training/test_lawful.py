"""Lawful inputs, the fairness report and reproducible training: pure functions, no servers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelkinds
from riskstream.settings import Settings, SettingsError
from training.config import TrainingConfig
from training.dataset import TrainingDataError, feature_columns, labelled, split_rows
from training.fairness import fairness_report, min_air, to_markdown
from training.lawful import DEFAULT_PROTECTED, InputPolicy, select_inputs
from training.models import SearchBudget, fit_with_search
from training.prepare import select_columns

pytestmark = pytest.mark.unit


def _table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    income = np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(10, 0.5, n))
    label = (x + rng.normal(scale=0.8, size=n) > 0.9).astype(int)
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "obs_date": pd.Timestamp("2024-01-01").date(),
            "label": label,
            "source": "test",
            "attr_client_id": np.arange(n, dtype=float),
            "utilisation_m1": x,
            "income": income,
            "education": rng.choice(["uni", "school", None], n),
            "sex": rng.choice(["male", "female"], n),
            "marital_status": rng.choice(["single", "married"], n),
            "age": rng.integers(21, 70, n).astype(float),
            "attr_race": rng.choice(["g1", "g2"], n),
            "attr_protected_union_member": rng.choice(["y", "n"], n),
            "attr_empty": pd.Series([None] * n, dtype="object"),
        }
    )


def test_default_list_covers_regulation_b() -> None:
    for name in ("sex", "marital_status", "age", "race", "colour", "color", "religion"):
        assert name in DEFAULT_PROTECTED
    assert "national_origin" in DEFAULT_PROTECTED


def test_protected_and_identifiers_are_never_inputs() -> None:
    rows = labelled(_table(), "t")
    columns, selection, empty = select_columns(rows, InputPolicy(), "t")
    assert set(columns.all) == {"utilisation_m1", "income", "education"}
    assert set(selection.protected) == {
        "sex",
        "marital_status",
        "age",
        "attr_race",
        "attr_protected_union_member",
    }
    assert selection.identifiers == ("attr_client_id",)
    assert empty == ("attr_empty",)
    # The protected columns are still in the table, for monitoring and fairness.
    assert {"sex", "age", "attr_race"} <= set(rows.columns)


def test_age_only_with_the_explicit_opt_in_and_extra_names_from_config() -> None:
    cols = ["age", "sex", "region", "utilisation_m1", "customer_id", "id"]
    sel = select_inputs(cols, InputPolicy(extra=("region",), allow_age=True))
    assert sel.features == ("age", "utilisation_m1")
    assert sel.protected == ("sex", "region")
    assert sel.identifiers == ("customer_id", "id")
    assert "age" in select_inputs(cols, InputPolicy()).protected


def test_policy_from_settings() -> None:
    settings = Settings.from_mapping(
        {"RISKSTREAM_PROTECTED_ATTRIBUTES": "Religion, union_member", "RISKSTREAM_ALLOW_AGE": "1"}
    )
    config = TrainingConfig().with_settings(settings)
    assert config.protected_extra == ("religion", "union_member") and config.allow_age
    assert "age" not in config.inputs.protected and "union_member" in config.inputs.protected
    assert TrainingConfig.from_params(config.to_params()) == config
    assert not TrainingConfig().with_settings(Settings.from_mapping({})).allow_age
    with pytest.raises(SettingsError, match="RISKSTREAM_ALLOW_AGE"):
        Settings.from_mapping({"RISKSTREAM_ALLOW_AGE": "yes please"})


def test_a_table_of_protected_columns_only_is_refused_with_the_fix() -> None:
    rows = labelled(_table()[["account_id", "obs_date", "label", "source", "sex", "age"]], "t")
    with pytest.raises(TrainingDataError, match=r"no usable model input.*RISKSTREAM_ALLOW_AGE"):
        select_columns(rows, InputPolicy(), "t")


def test_fairness_report_flags_low_adverse_impact() -> None:
    frame = pd.DataFrame(
        {
            "label": [0] * 100 + [1] * 20 + [0] * 100,
            "sex": ["f"] * 120 + ["m"] * 100,
            "age": [30.0] * 110 + [70.0] * 110,
        }
    )
    p = np.r_[np.full(120, 0.6), np.full(100, 0.1)]  # group f all declined at threshold 0.5
    p[:60] = 0.2  # half of f approved
    report = fairness_report(frame, p, 0.5, ["sex", "age", "race"])
    assert set(report["attributes"]) == {"sex", "age"}
    sex = {r["group"]: r for r in report["attributes"]["sex"]}
    assert sex["m"]["approval_rate"] == 1.0 and sex["f"]["approval_rate"] == 0.5
    assert sex["f"]["adverse_impact_ratio"] == pytest.approx(0.5) and sex["f"]["flagged"]
    assert sex["f"]["default_rate"] == pytest.approx(20 / 120)
    assert any("sex=f" in f for f in report["flags"])
    assert min_air(report) == pytest.approx(0.5)
    assert "| f | 120 | 0.500 | 0.500 |" in to_markdown(report)


@pytest.mark.parametrize("kind", modelkinds.names())  # every registered kind, a new one included
def test_same_data_and_seed_give_the_same_model(kind: str) -> None:
    rows = labelled(_table(800, seed=2), "t")
    columns, _, _ = select_columns(rows, InputPolicy(), "t")
    split = split_rows(rows, seed=1)
    train, test = rows.iloc[split.train_index], rows.iloc[split.test_index]
    budget = SearchBudget(max_trials=3, seed=5)
    runs = [
        fit_with_search(kind, train[columns.all], train["label"].to_numpy(), columns, budget)
        for _ in range(2)
    ]
    assert runs[0].best_params == runs[1].best_params
    p = [r.pipeline.predict_proba(test[columns.all])[:, 1] for r in runs]
    np.testing.assert_array_equal(p[0], p[1])
    assert runs[0].stopped_by == "trials"
    # Refit on all training rows; calibration and threshold out of fold.
    assert runs[0].extra["fit_rows"] == len(train)
    assert len(runs[0].validation_p) == len(train)
    names = list(runs[0].pipeline.named_steps["preprocess"].feature_names_in_)
    assert names == columns.all and "sex" not in names


def test_missing_values_keep_an_indicator_for_linear_models() -> None:
    rows = labelled(_table(400), "t")
    columns = feature_columns(rows[["utilisation_m1", "income"]])
    fitted = fit_with_search(
        "lr", rows[columns.all], rows["label"].to_numpy(), columns, SearchBudget(max_trials=1)
    )
    names = list(fitted.pipeline.named_steps["preprocess"].get_feature_names_out())
    assert any("missingindicator_income" in n for n in names)
