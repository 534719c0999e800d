"""SQL over the catalog's tables in the session's moto S3."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from riskstream import names
from riskstream.clients import make_client
from serving.batch import run_batch
from serving.sql import SqlError, run_sql
from serving.storage import read_scores
from tests.serving.conftest import OBS_DATE, ServingWorld

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 2, 4)


@pytest.fixture(scope="module")
def scored(world: ServingWorld) -> ServingWorld:
    run_batch(world.settings, DAY)
    # features as ETL registers them: a Glue table with an obs_date partition key
    glue = make_client(world.settings, "glue")
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_table(
            DatabaseName=world.settings.glue_database,
            TableInput={
                "Name": names.features_table(world.settings.portfolio),
                "StorageDescriptor": {
                    "Columns": [{"Name": "account_id", "Type": "string"}],
                    "Location": names.features_location(world.settings) + "/",
                },
                "PartitionKeys": [{"Name": "obs_date", "Type": "date"}],
            },
        )
    return world


def test_tier_counts_match_the_scores_partition(scored: ServingWorld) -> None:
    result = run_sql(
        scored.settings,
        f"select risk_tier, count(*) as n from scores where score_date = '{DAY}' "
        "group by 1 order by 1",
    )
    expected = read_scores(scored.settings, DAY).to_pandas()["risk_tier"].value_counts()
    assert dict(zip(result["risk_tier"], result["n"], strict=True)) == expected.to_dict()


def test_join_scores_to_features(scored: ServingWorld) -> None:
    result = run_sql(
        scored.settings,
        "select count(*) as n, cast(min(f.obs_date) as varchar) as d from scores s "
        "join features f on f.account_id = s.account_id and f.obs_date = s.obs_date "
        f"where s.score_date = '{DAY}'",
    )
    assert int(result["n"][0]) == 300
    assert result["d"][0] == OBS_DATE.isoformat()


def test_bad_sql_names_the_tables(scored: ServingWorld) -> None:
    with pytest.raises(SqlError, match="scores"):
        run_sql(scored.settings, "select * from no_such_table")
