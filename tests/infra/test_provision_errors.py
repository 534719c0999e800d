"""Provisioning's look-ups: a 'not found' answer means create, any other error is raised."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.provision import ensure_checkpoint_table, ensure_glue_database
from riskstream.settings import Settings

pytestmark = pytest.mark.unit


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Describe")


class FakeGlue:
    def __init__(self, code: str) -> None:
        self.code = code
        self.created: list[dict[str, Any]] = []

    def get_database(self, Name: str) -> dict[str, Any]:
        raise _error(self.code)

    def create_database(self, DatabaseInput: dict[str, Any]) -> None:
        self.created.append(DatabaseInput)


def test_a_missing_database_is_created_and_another_error_is_raised() -> None:
    settings = Settings.from_mapping({"RISKSTREAM_PREFIX": "unit"})
    glue = FakeGlue("EntityNotFoundException")
    assert ensure_glue_database(glue, "db", settings).action == "created"
    assert [d["Name"] for d in glue.created] == ["db"]
    denied = FakeGlue("AccessDeniedException")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        ensure_glue_database(denied, "db", settings)
    assert denied.created == []


def test_an_existing_table_is_left_alone() -> None:
    class Tables:
        def describe_table(self, TableName: str) -> dict[str, Any]:
            return {"Table": {"TableName": TableName, "TableStatus": "ACTIVE"}}

        def create_table(self, **kwargs: Any) -> None:
            raise AssertionError("an existing table must not be created again")

    assert ensure_checkpoint_table(Tables(), "t").action == "exists"
