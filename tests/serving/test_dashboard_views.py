"""The dashboard's view, CSV and SQL endpoints on the small Parquet fixture (no cloud): what each
answers, what the SQL endpoint refuses, and that the warm connection is rebuilt only when the
data changes."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient

from riskstream.settings import Settings
from serving import dashboard
from serving.warehouse import Warehouse
from tests.serving.test_views import D1, D2, RUN, local_connect, write_fixture

pytestmark = pytest.mark.unit

REPORTS = [
    {
        "score_date": D2,
        "score": {"psi": 0.31, "flag": True, "expected": [0.5, 0.5], "actual": [0.9, 0.1]},
        "features": {
            "age": {"psi": 0.02, "flag": False},
            "utilisation_avg_3m": {"psi": 0.12, "flag": False},
        },
    }
]


@pytest.fixture
def state(tmp_path: Path) -> dict[str, Any]:
    write_fixture(tmp_path)
    return {"root": tmp_path, "version": 1}


def with_catalog_view(root: Path) -> tuple[Any, list[str]]:
    """The fixture's tables plus a view over a registered Arrow dataset, as the catalog's
    tables that stay on S3 (curated_*) are."""
    con = local_connect(root)
    con.register("_ds_curated_demo", ds.dataset(root / "scores", partitioning="hive"))
    con.execute("CREATE VIEW curated_demo AS SELECT * FROM _ds_curated_demo")
    con.execute(
        "CREATE TABLE curated_purchase AS SELECT * FROM (VALUES "
        "('a', TIMESTAMP '2026-01-05 10:00:00', 'demo', 7.5), "
        "('a', TIMESTAMP '2026-01-04 10:00:00', 'synthetic', 1.0)) "
        "t(account_id, event_time, source, amount)"
    )
    return con, ["scores", "features", "curated_demo", "curated_purchase"]


DEMO = Settings.from_mapping({"RISKSTREAM_PORTFOLIO": "demo"})


def fixture_warehouse(state: dict[str, Any]) -> Warehouse:
    """The demo portfolio's warehouse over the local fixture, rebuilt when its version moves."""
    return Warehouse(
        DEMO,
        check_seconds=0.0,
        connect=lambda s: with_catalog_view(state["root"]),
        fingerprint=lambda: (state["version"],),
        load_reports=lambda s: REPORTS,
    )


@pytest.fixture
def client(state: dict[str, Any]) -> TestClient:
    return TestClient(dashboard.create_app(DEMO, warehouse=fixture_warehouse(state)))


def test_meta_lists_dates_and_what_is_not_computed(client: TestClient) -> None:
    meta = client.get("/api/meta").json()
    assert meta["portfolio"] == "demo"
    assert meta["score_dates"] == [D1, D2]
    assert meta["model"] == {"name": "m", "version": "1", "accounts": 3}
    assert meta["not_computed"] == {}


def test_spend_views_read_this_portfolios_purchases(client: TestClient) -> None:
    spend = client.get("/api/views/spend").json()
    assert spend["rows"] == [["2026-01-01", 7.5, 1, 7.5, 7.5, 7.5, 0]]  # not the 1.0 of synthetic
    assert client.get("/api/views/spend_jumps", params={"month": "2026-01-31"}).json()["rows"] == []
    assert client.get("/api/views/spend.csv").text.splitlines()[0].startswith("month,spend,")


def test_views_default_to_the_latest_date(client: TestClient) -> None:
    dist = client.get("/api/views/distribution").json()
    assert dist["filters"]["date"] == D2
    # the label states the scale and the range the scores really span
    assert dist["filters"]["scale"] == [300, 850]
    assert dist["filters"]["score_range"][0] <= dist["filters"]["score_range"][2]
    assert sum(r[2] for r in dist["rows"]) == 3
    mig = client.get("/api/views/migration").json()
    assert mig["filters"] == {
        "tiers": None,
        "utilisation": None,
        "mob": None,
        "from": D1,
        "to": D2,
        "from_run": None,
    }
    assert sum(r[2] for r in mig["rows"]) == 3
    util = client.get("/api/views/accounts", params={"date": D1, "utilisation": ">100%"}).json()
    assert [r[0] for r in util["rows"]] == ["c"] and util["filters"]["utilisation"] == ">100%"
    bad = client.get("/api/views/accounts", params={"mob": "ten years"})
    assert bad.status_code == 400 and "months-on-book band" in bad.json()["detail"]
    seg = client.get("/api/views/segments", params={"date": D1, "tier": "High risk"}).json()
    assert [r[:3] for r in seg["rows"]] == [
        ["High risk", ">100%", "60+"],
        ["High risk", "unknown", "12-23"],
    ]
    over = client.get("/api/views/overview", params=[("tier", "Prime"), ("tier", "Subprime")])
    assert [r[1] for r in over.json()["rows"]] == [2, 2]
    acct = client.get("/api/views/account", params={"id": "c"}).json()
    assert [r[2] for r in acct["rows"]] == [300, 850]
    roll = client.get("/api/views/roll_rates", params={"date": D1}).json()
    assert sum(r[2] for r in roll["rows"]) == 4
    vintage = client.get("/api/views/vintage").json()
    assert sum(r[2] for r in vintage["rows"]) == 7
    events = client.get("/api/views/events", params={"id": "a"}).json()
    assert events["columns"] == ["event_time", "event_type", "detail"]
    # curated_demo has no event_time; the other portfolio's purchase stays out
    assert [r[:2] for r in events["rows"]] == [["2026-01-05 10:00:00", "purchase"]]
    assert client.get("/api/views/events").status_code == 400
    drift = client.get("/api/views/drift").json()
    assert [r[1] for r in drift["rows"]] == ["(score)", "age", "utilisation_avg_3m"]
    response = client.get("/api/views/overview")
    assert response.headers["server-timing"].startswith("app;dur=")


def test_migration_between_two_runs_of_one_date(client: TestClient) -> None:
    meta = client.get("/api/meta").json()
    assert meta["replaced_runs"] == {
        D2: [{"replaced_at": RUN, "model_version": "0", "accounts": 3}]
    }
    # one date against itself means against its latest replaced run
    mig = client.get("/api/views/migration", params={"from": D2, "to": D2}).json()
    assert mig["filters"]["from_run"] == RUN
    assert [r for r in mig["rows"] if r[2] and r[0] != r[1]] == [
        ["Prime", "Near-prime", 1],
        ["High risk", "Prime", 1],
    ]
    bad = client.get("/api/views/migration", params={"from": D1, "to": D2, "from_run": RUN})
    assert bad.status_code == 400 and f"no replaced run '{RUN}' of {D1}" in bad.json()["detail"]


def test_view_errors(client: TestClient) -> None:
    assert client.get("/api/views/nope").status_code == 404
    assert client.get("/api/views/account").status_code == 400


def test_csv_download(client: TestClient) -> None:
    response = client.get("/api/views/accounts.csv", params={"date": D1})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "demo-accounts.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["account_id", "score", "pd"]
    assert [r[0] for r in rows[1:]] == ["c", "d", "b", "a"]


def test_plotly_is_served_locally(client: TestClient) -> None:
    response = client.get("/static/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert len(response.content) > 1_000_000
    page = client.get("/account?id=a").text
    assert '<script src="static/plotly.min.js">' in page
    assert "cdn" not in page.lower()


def test_sql_answers_a_select(client: TestClient) -> None:
    response = client.post(
        "/api/sql",
        json={"query": "select risk_tier, count(*) n from scores group by 1 order by 1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["risk_tier", "n"]
    assert body["rows"] == [["High risk", 2], ["Near-prime", 1], ["Prime", 2], ["Subprime", 2]]
    catalog = client.post("/api/sql", json={"query": "select count(*) from curated_demo"})
    assert catalog.status_code == 200, catalog.text
    assert catalog.json()["rows"] == [[7]]
    capped = client.post("/api/sql", json={"query": "select * from scores", "max_rows": 2})
    assert len(capped.json()["rows"]) == 2 and capped.json()["truncated"] is True


@pytest.mark.parametrize(
    "query",
    [
        "drop table scores",
        "create table x as select 1",
        "select 1; select 2",
        "insert into scores select * from scores",
        "copy scores to 'out.csv'",
        "set enable_external_access = true",
        "",
    ],
)
def test_sql_refuses_anything_but_one_select(client: TestClient, query: str) -> None:
    response = client.post("/api/sql", json={"query": query})
    assert response.status_code == 400
    assert client.post("/api/sql", json={"query": "select count(*) from scores"}).json()[
        "rows"
    ] == [[7]]


def test_sql_cannot_read_local_files(client: TestClient, state: dict[str, Any]) -> None:
    path = next(Path(state["root"]).rglob("*.parquet"))
    response = client.post("/api/sql", json={"query": f"select * from read_parquet('{path}')"})
    assert response.status_code == 400
    assert "permission" in response.json()["detail"].lower()


def test_sql_is_loopback_only(state: dict[str, Any]) -> None:
    settings = Settings.from_mapping({})
    house = Warehouse(
        settings,
        connect=lambda s: (local_connect(state["root"]), ["scores"]),
        fingerprint=lambda: (1,),
        load_reports=lambda s: [],
    )
    app = dashboard.create_app(settings, warehouse=house)
    remote = TestClient(app, client=("10.1.2.3", 5555))
    response = remote.post("/api/sql", json={"query": "select 1"})
    assert response.status_code == 403


def test_warm_connection_rebuilds_only_when_data_changes(
    client: TestClient, state: dict[str, Any]
) -> None:
    house: Warehouse = client.app.state.warehouse  # type: ignore[attr-defined]
    for _ in range(3):
        client.get("/api/views/overview")
    assert house.builds == 1
    state["version"] = 2
    client.get("/api/views/overview")
    assert house.builds == 2


def test_the_live_panel_and_an_accounts_live_score(state: dict[str, Any]) -> None:
    settings, house = DEMO, fixture_warehouse(state)
    change = {"account_id": "a", "event_time": "2026-03-01T08:00:00Z", "changed": ["tier"]}
    status = {
        "lag_ms": {"shardId-000000000000": 120},
        "events_per_second": 42.0,
        "model": {"version": "3"},
        "risk_events": 1,
        "recent_changes": [{**change, "old_tier": "Prime", "new_tier": "Subprime"}],
    }
    scores = {"a": {"pd": 0.2, "score": 610, "risk_tier": "Subprime", "as_of": "2026-03-01"}}
    live = dashboard.create_app(
        settings, warehouse=house, live_status=lambda: status, live_score=scores.get
    )
    with TestClient(live) as client:
        panel = client.get("/api/live").json()
        assert panel["running"] and panel["lag_ms"] == {"shardId-000000000000": 120}
        assert panel["champion_version"] == "3"
        assert panel["recent_changes"][0]["new_tier"] == "Subprime"
        assert client.get("/api/live/account", params={"id": "a"}).json()["live"] == scores["a"]
        assert client.get("/api/live/account", params={"id": "b"}).json() == {"live": None}
        assert client.get("/api/live/account").status_code == 400
    down = dashboard.create_app(
        settings, warehouse=house, live_status=lambda: None, live_score=scores.get
    )
    with TestClient(down) as client:
        assert client.get("/api/live").json()["running"] is False
