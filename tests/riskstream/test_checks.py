"""The shared value checks: one message naming each bad field and its value."""

from __future__ import annotations

import pytest

from riskstream.checks import require_positive

pytestmark = pytest.mark.unit


def test_positive_values_and_unset_ones_pass() -> None:
    require_positive(pdo=40.0, base_odds=50, max_outage_seconds=None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pdo": -5.0}, "pdo=-5.0 must be positive"),
        ({"cost_fn": 0.0, "cost_fp": 1.0}, "cost_fn=0.0 must be positive"),
        ({"a": 0, "b": -1}, "a=0 and b=-1 must be positive"),
    ],
)
def test_each_value_not_above_zero_is_named(values: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        require_positive(**values)
    assert str(caught.value) == message
