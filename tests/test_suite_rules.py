"""The suite's own rules (tests/conftest.py): reproducible property tests, truthful markers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import settings as hypothesis_settings

from tests.conftest import PROCESS_FIXTURES, marker_problems

pytestmark = pytest.mark.unit


def test_property_tests_are_derandomized_without_a_database() -> None:
    current = hypothesis_settings()
    assert current.derandomize is True
    assert current.database is None
    assert current.deadline is None
    assert current.print_blob is True


@dataclass
class FakeItem:
    nodeid: str
    markers: list[str]
    fixturenames: list[str] = field(default_factory=list)

    def iter_markers(self):  # type: ignore[no-untyped-def]
        return iter([getattr(pytest.mark, name).mark for name in self.markers])


def test_marker_rules_name_each_offending_test() -> None:
    items = [
        FakeItem("t.py::ok_unit", ["unit"], ["tmp_path"]),
        FakeItem("t.py::ok_integration", ["integration", "parametrize"], ["cloud_settings"]),
        FakeItem("t.py::none", ["parametrize"]),
        FakeItem("t.py::two", ["unit", "e2e"]),
        FakeItem("t.py::unit_with_spark", ["unit"], ["spark", "cloud_settings", "tmp_path"]),
    ]
    problems = marker_problems(items)  # type: ignore[arg-type]
    assert problems == [
        "t.py::none: needs exactly one of unit/integration/e2e (has none)",
        "t.py::two: needs exactly one of unit/integration/e2e (has e2e, unit)",
        "t.py::unit_with_spark: marked unit but uses cloud_settings, spark, which starts a "
        "server or a JVM; mark it integration",
    ]
    assert {"cloud_settings", "mlflow_settings", "spark"} <= PROCESS_FIXTURES
