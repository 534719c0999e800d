"""PSI against values computed by hand, and the monitoring report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serving.monitoring import (
    EPSILON,
    PSI_ALERT,
    bin_shares,
    inner_edges,
    monitoring_report,
    psi,
    psi_entry,
    score_reference,
)

pytestmark = pytest.mark.unit


def test_psi_by_hand() -> None:
    expected = [0.25, 0.25, 0.25, 0.25]
    actual = [0.10, 0.20, 0.30, 0.40]
    by_hand = (
        (0.10 - 0.25) * math.log(0.10 / 0.25)
        + (0.20 - 0.25) * math.log(0.20 / 0.25)
        + (0.30 - 0.25) * math.log(0.30 / 0.25)
        + (0.40 - 0.25) * math.log(0.40 / 0.25)
    )
    assert by_hand == pytest.approx(0.137444 + 0.011157 + 0.009116 + 0.070500, abs=1e-5)
    assert psi(expected, actual) == pytest.approx(by_hand, rel=1e-12)


def test_identical_distributions_have_zero_psi() -> None:
    assert psi([0.1] * 10, [0.1] * 10) == 0.0


def test_empty_bin_is_floored_not_infinite() -> None:
    value = psi([0.5, 0.5], [1.0, 0.0])
    by_hand = (1.0 - 0.5) * math.log(1.0 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert value == pytest.approx(by_hand)
    assert value > PSI_ALERT


def test_edges_with_or_without_outer_bounds() -> None:
    assert list(inner_edges([0, 1, 2, 3], 3)) == [1, 2]
    assert list(inner_edges([1, 2], 3)) == [1, 2]
    with pytest.raises(ValueError, match="5 edges do not fit 3 proportions"):
        inner_edges([0, 1, 2, 3, 4], 3)


def test_bin_shares_put_cut_values_in_the_upper_bin_and_skip_nan() -> None:
    shares = bin_shares([0.5, 1.0, 1.5, 2.0, 9.0, -4.0, np.nan], np.array([1.0, 2.0]), 3)
    assert list(shares) == pytest.approx([2 / 6, 2 / 6, 2 / 6])


def test_psi_entry_flags_a_shift() -> None:
    baseline = {"edges": [0, 1, 2, 3, 4], "proportions": [0.25, 0.25, 0.25, 0.25]}
    same = psi_entry([0.5, 1.5, 2.5, 3.5], baseline)
    assert same["psi"] == 0 and not same["flag"]
    shifted = psi_entry([3.5] * 9 + [0.5], baseline)
    assert shifted["actual"] == [0.1, 0.0, 0.0, 0.9]
    assert shifted["edges"] == [0, 1, 2, 3, 4]
    assert shifted["flag"] and shifted["psi"] > PSI_ALERT


def test_report_uses_pd_or_score_and_top_features() -> None:
    base = {
        "score": {"edges": [0.0, 0.1, 0.2, 1.0], "proportions": [0.5, 0.3, 0.2]},
        "features": {
            "a": {"edges": [0, 1, 2], "proportions": [0.5, 0.5]},
            "b": {"edges": [0, 1, 2], "proportions": [0.5, 0.5]},
            "c": {"edges": [0, 1, 2], "proportions": [0.5, 0.5]},
        },
    }
    assert score_reference(base["score"]) == "pd"
    assert score_reference({"edges": [300, 600, 850]}) == "score"
    pds = np.array([0.05] * 5 + [0.15] * 3 + [0.5] * 2)
    feats = {"a": np.array([0.5, 1.5] * 5), "b": np.array([0.5] * 10), "c": np.zeros(10)}
    report = monitoring_report(base, pds, np.zeros(10), feats, ["b", "zzz", "a", "c"], top_n=2)
    assert report["score"]["psi"] == 0 and report["score"]["on"] == "pd"
    assert list(report["features"]) == ["b", "a"]
    assert report["features"]["a"]["psi"] == 0
    assert report["features"]["b"]["flag"] and report["flag"]
    assert monitoring_report(None, pds, pds, {}, [])["baseline"] == "missing"


def test_categorical_entry_puts_unseen_categories_in_other_and_flags_a_shift() -> None:
    baseline = {"categories": ["single", "married"], "proportions": [0.6, 0.4]}
    same = psi_entry(["single"] * 6 + ["married"] * 4 + [None], baseline)
    assert same["categories"] == ["single", "married", "(other)"]
    assert same["actual"] == [0.6, 0.4, 0.0] and same["psi"] == 0 and not same["flag"]
    shifted = psi_entry(np.array(["widowed"] * 5 + ["married"] * 5, dtype=object), baseline)
    assert shifted["actual"] == [0.0, 0.5, 0.5] and shifted["expected"] == [0.6, 0.4, 0.0]
    assert shifted["flag"] and "edges" not in shifted


def test_report_gives_categorical_inputs_their_psi() -> None:
    base = {
        "score": {"edges": [0.0, 0.5, 1.0], "proportions": [0.5, 0.5]},
        "features": {"segment": {"categories": ["a", "(other)"], "proportions": [0.9, 0.1]}},
    }
    seg = np.array(["a"] * 9 + ["zz"], dtype=object)
    report = monitoring_report(base, np.full(10, 0.2), np.zeros(10), {"segment": seg}, ["segment"])
    assert report["features"]["segment"]["psi"] == 0
    assert report["features"]["segment"]["categories"] == ["a", "(other)"]
