"""The benchmark row helper: the ratio, the target and whether it was met, from one goal."""

from __future__ import annotations

import pytest

from benchmarks.common import ratio_row

pytestmark = pytest.mark.unit


def test_a_goal_on_the_ratio_sets_target_and_met() -> None:
    row = ratio_row("a", "f", 90.0, "rows/s", "raw loop", 100.0, ratio_at_least=0.8, id="a.f")
    assert (row.ratio, row.target, row.met) == (0.9, ">= 0.8", True)
    assert row.reference == "raw loop" and row.reference_value == 100.0 and row.id == "a.f"
    low = ratio_row("a", "f", 2.0, "x", "ref", 1.0, ratio_at_most=1.0, id="a.g")
    assert (low.target, low.met) == ("<= 1", False)


def test_a_goal_on_the_value_names_its_unit_and_needs_the_other_conditions() -> None:
    row = ratio_row("a", "f", 900.0, "MB", "before", 300.0, at_most=1024, id="a.m")
    assert (row.ratio, row.target, row.met) == (3.0, "<= 1,024 MB", True)
    failed = ratio_row("a", "f", 30.0, "s", "ref", 60.0, at_most=60, also=False, id="a.s")
    assert (failed.target, failed.met) == ("<= 60 s", False)
    auc = ratio_row("a", "f", 0.77, "AUC", "plain", 0.76, at_least=0.78, id="a.auc")
    assert (auc.target, auc.met) == (">= 0.78 AUC", False)


def test_no_goal_is_information_and_two_goals_are_refused() -> None:
    row = ratio_row("a", "f", 1.0, "s", "ref", 4.0, id="a.i")
    assert (row.ratio, row.target, row.met) == (0.25, "", None)
    with pytest.raises(ValueError, match="one goal per row"):
        ratio_row("a", "f", 1.0, "s", "ref", 1.0, at_most=2, ratio_at_most=1, id="a.two")
