"""The suite's own rules (tests/conftest.py): reproducible property tests, truthful markers."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from infra.services import ServiceError
from tests.conftest import (
    PROCESS_FIXTURES,
    marker_problems,
    spark_tests_together,
    up_on_a_free_port,
)

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


def test_a_port_taken_by_another_process_is_chosen_again() -> None:
    tried: list[int] = []
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def start(port: int) -> Any:
        tried.append(port)
        if len(tried) == 1:  # someone else binds the port between our choice and our start
            holder.bind(("127.0.0.1", port))
            holder.listen()
            raise ServiceError(f"port {port} is already in use")
        return ("settings", port)

    try:
        assert up_on_a_free_port(start) == ("settings", tried[-1])  # type: ignore[arg-type]
    finally:
        holder.close()
    assert len(tried) == 2 and tried[0] != tried[1]

    failures: list[int] = []

    def broken(port: int) -> Any:
        failures.append(port)
        raise ServiceError("did not answer")

    with pytest.raises(ServiceError, match="did not answer"):
        up_on_a_free_port(broken)  # type: ignore[arg-type]
    assert len(failures) == 1  # nobody else holds the port: a real failure, raised at once


def test_the_tests_on_the_sessions_spark_run_together_where_the_first_stood() -> None:
    def item(name: str, *fixtures: str) -> FakeItem:
        return FakeItem(name, ["unit"], list(fixtures))

    a, b = item("a.py::one"), item("etl.py::one", "spark", "tmp_path")
    c, d = item("etl.py::two", "tmp_path"), item("serving.py::one", "spark")
    e = item("training.py::one", "cloud_settings")
    order = spark_tests_together([a, b, c, d, e])  # type: ignore[list-item]
    assert [x.nodeid for x in order] == [  # type: ignore[attr-defined]
        "a.py::one", "etl.py::one", "serving.py::one", "etl.py::two", "training.py::one"
    ]  # fmt: skip
    assert spark_tests_together([a, c, e]) == [a, c, e]  # type: ignore[list-item]
