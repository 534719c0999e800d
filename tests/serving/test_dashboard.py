"""The analyst dashboard as a real service over real scores in the session's moto S3: every
view's data endpoint against the same question asked in SQL (in-process), the SQL endpoint and
`riskstream sql` through the warm connection, and the pages in a real headless browser (Debian's
chromium), whose charts must hold the data SQL gives. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.fixtures import (
    CATEGORICAL,
    NUMERIC,
    features_frame,
    write_features,
    write_purchases,
)
from infra.services import free_port
from pipeline.cli import main
from riskstream.settings import Settings
from serving.batch import run_batch
from serving.processes import dashboard_service
from serving.sql import ask_dashboard, run_sql
from serving.storage import read_monitoring
from serving.views import NOT_COMPUTED
from tests.serving.conftest import ServingWorld

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PREVIOUS = dt.date(2026, 2, 5)
LATEST = dt.date(2026, 3, 1)
TIERS = ("Prime", "Near-prime", "Subprime", "High risk")


@pytest.fixture(scope="module")
def dashboard(world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = world.settings
    run_batch(settings, PREVIOUS)
    # a month later the same accounts have drifted towards more arrears
    shifted = features_frame(300, dt.date(2026, 2, 28), seed=3, shift=1.0)
    shifted["account_id"] = features_frame(300, dt.date(2026, 2, 28), seed=2)["account_id"]
    write_features(settings, shifted, dt.date(2026, 2, 28))
    run_batch(settings, LATEST)
    run_batch(settings, LATEST)  # a rerun: the migration between two runs of one date
    write_purchases(settings, purchases(shifted["account_id"][:40]))
    settings = settings.with_overrides(
        dashboard_url=f"http://127.0.0.1:{free_port()}",
        live_url=f"http://127.0.0.1:{free_port()}",  # no live scorer there
        state_dir=tmp_path_factory.mktemp("dashboard"),
    )
    service = dashboard_service(settings)
    service.up()
    try:
        yield settings
    finally:
        service.down()


def purchases(accounts: pd.Series) -> pd.DataFrame:
    """Eight months of purchases: account k spends 50 + k on the 3rd of each month, and the
    first five also ten times as much on the 20th of the last month (a jump each)."""
    rows = [
        (
            a,
            pd.Timestamp(2025, 7 + m, 3, 12) if m < 6 else pd.Timestamp(2026, m - 5, 3, 12),
            50.0 + k,
        )
        for k, a in enumerate(accounts)
        for m in range(8)
    ]
    rows += [(a, pd.Timestamp(2026, 2, 20, 12), 500.0 + 10 * k) for k, a in enumerate(accounts[:5])]
    return pd.DataFrame(rows, columns=["account_id", "event_time", "amount"])


def get(settings: Settings, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode(params, doseq=True)
    url = f"{settings.dashboard_url}{path}" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        return json.loads(body) if "json" in response.headers["content-type"] else body.decode()


def sql(settings: Settings, query: str) -> list[dict[str, Any]]:
    """The in-process answer (no dashboard involved)."""
    frame = run_sql(settings, query)
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def records(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(view["columns"], r, strict=True)) for r in view["rows"]]


def test_every_view_matches_sql(dashboard: Settings) -> None:
    s, day, prev = dashboard, LATEST.isoformat(), PREVIOUS.isoformat()
    over = records(get(s, "/api/views/overview"))
    expected = sql(
        s,
        "select cast(score_date as varchar) d, count(*) n, sum(exposure) e, avg(pd) p, "
        "avg(label) o from scores group by 1 order by 1",
    )
    assert [r["score_date"] for r in over] == [e["d"] for e in expected]
    for got, want in zip(over, expected, strict=True):
        assert got["accounts"] == want["n"]
        assert got["exposure"] == pytest.approx(want["e"])
        assert got["expected_loss"] == pytest.approx(
            sql(s, f"select sum(pd*exposure) x from scores where score_date='{want['d']}'")[0]["x"]
        )
        assert got["predicted_default_rate"] == pytest.approx(want["p"])
        assert got["observed_default_rate"] == pytest.approx(want["o"])

    tiers = {
        r["risk_tier"]: r["n"]
        for r in sql(
            s, f"select risk_tier, count(*) n from scores where score_date='{day}' group by 1"
        )
    }
    dist = records(get(s, "/api/views/distribution", date=day))
    assert all(300 <= r["band_low"] < 850 for r in dist)
    for tier in TIERS:
        assert sum(r["accounts"] for r in dist if r["risk_tier"] == tier) == tiers.get(tier, 0)

    mig = get(s, "/api/views/migration", **{"from": prev, "to": day})
    pairs = sql(
        s,
        "select a.risk_tier f, b.risk_tier t, count(*) n from scores a join scores b "
        f"on a.account_id = b.account_id where a.score_date='{prev}' and b.score_date='{day}' "
        "group by 1, 2",
    )
    got = {(r["from_tier"], r["to_tier"]): r["accounts"] for r in records(mig)}
    assert {k: v for k, v in got.items() if v} == {(p["f"], p["t"]): p["n"] for p in pairs}
    assert sum(got.values()) == 300

    seg = records(get(s, "/api/views/segments", date=day, tier="High risk"))
    high = sql(
        s,
        "select count(*) n, sum(s.exposure) e, count(*) filter (where f.utilisation_avg_3m >= 0.8)"
        " u from scores s join features f using (account_id, obs_date) "
        f"where s.score_date='{day}' and s.risk_tier='High risk'",
    )[0]
    assert sum(r["accounts"] for r in seg) == high["n"] > 0
    assert sum(r["exposure"] for r in seg) == pytest.approx(high["e"])
    assert {r["risk_tier"] for r in seg} == {"High risk"}
    assert (
        sum(r["accounts"] for r in seg if r["utilisation_band"] in ("80-100%", ">100%"))
        == (high["u"])
    )

    delq = records(get(s, "/api/views/delinquency"))
    late = sql(
        s,
        "select count(*) n from scores s join features f using (account_id, obs_date) "
        f"where s.score_date='{day}' and f.repayment_status_m1 >= 3",
    )[0]["n"]
    assert sum(r["accounts"] for r in delq if r["score_date"] == day and r["bucket"] == "90+") == (
        late
    )

    roll = records(get(s, "/api/views/roll_rates", date=day))
    assert sum(r["accounts"] for r in roll) == 300
    stays = sql(
        s,
        "select count(*) filter (where f.repayment_status_m1 >= 3) n, count(*) d "
        "from scores s join features f using (account_id, obs_date) "
        f"where s.score_date='{day}' and f.repayment_status_m2 >= 3",
    )[0]
    worst = next(r for r in roll if r["from_bucket"] == "90+" and r["to_bucket"] == "90+")
    assert worst["accounts"] == stays["n"]
    assert worst["rate"] == (pytest.approx(stays["n"] / stays["d"]) if stays["d"] else None)
    # the test's features carry no months on book: the vintage view says so with no rows
    assert get(s, "/api/views/vintage")["rows"] == []

    top = records(get(s, "/api/views/accounts", date=day))
    want_top = sql(
        s,
        f"select account_id from scores where score_date='{day}' order by pd desc, account_id "
        "limit 50",
    )
    assert [r["account_id"] for r in top] == [w["account_id"] for w in want_top]

    one = top[0]["account_id"]
    history = records(get(s, "/api/views/account", id=one))
    want_history = sql(
        s,
        f"select cast(score_date as varchar) d, score from scores where account_id='{one}' "
        "order by 1",
    )
    assert [(h["score_date"], h["score"]) for h in history] == [
        (w["d"], w["score"]) for w in want_history
    ]

    drift = records(get(s, "/api/views/drift", date=day))
    report = next(r for r in read_monitoring(s) if r["score_date"] == day)
    assert {r["input"] for r in drift} == {"(score)", *NUMERIC, *CATEGORICAL}
    for r in drift:
        entry = report["score"] if r["input"] == "(score)" else report["features"][r["input"]]
        assert r["psi"] == entry["psi"] and r["flag"] == entry["flag"]
        if r["input"] in CATEGORICAL:
            assert len(r["expected"]) == len(r["actual"]) == len(r["categories"])
        else:
            assert len(r["expected"]) == len(r["actual"]) == len(r["edges"]) - 1

    spend = records(get(s, "/api/views/spend"))
    monthly = sql(
        s,
        "select cast(cast(date_trunc('month', event_time) as date) as varchar) m, "
        "sum(amount) x, count(distinct account_id) n from curated_purchase group by 1 order by 1",
    )
    assert [(r["month"], r["spend"], r["accounts"]) for r in spend] == [
        (m["m"], pytest.approx(m["x"]), m["n"]) for m in monthly
    ]
    assert [r["jumps"] for r in spend] == [0] * 7 + [5]
    jumps = records(get(s, "/api/views/spend_jumps"))
    assert len(jumps) == 5 and all(r["ratio"] >= 3 for r in jumps)

    csv_text = get(s, "/api/views/accounts.csv", date=day)
    assert len(csv_text.strip().splitlines()) == 51

    meta = get(s, "/api/meta")
    assert meta["portfolio"] == s.portfolio
    assert set(meta["not_computed"]) == set(NOT_COMPUTED)


def test_sql_goes_through_the_warm_connection(
    dashboard: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    query = "select risk_tier, count(*) as n from scores group by 1 order by 1"
    frame, truncated = ask_dashboard(dashboard, query)
    assert not truncated
    assert json.loads(frame.to_json(orient="records")) == sql(dashboard, query)
    for key, value in dashboard.to_env().items():
        monkeypatch.setenv(key, value)
    assert main(["sql", query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == sql(dashboard, query)
    # only the dashboard refuses a write: in-process DuckDB would drop its own view
    assert main(["sql", "drop view scores"]) == 1
    assert "only SELECT" in caplog.text
    assert main(["sql", "select count(*) n from scores", "--in-process", "--format", "json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)[0]["n"]
        == sql(dashboard, "select count(*) n from scores")[0]["n"]
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1400,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        options=options,
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
    )
    try:
        yield driver
    finally:
        driver.quit()


def _wait_loaded(driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true"
    )


def _chart(driver: Any, div: str) -> list[dict[str, Any]]:
    """The traces plotly drew in ``div`` (x, y, z, name)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return document.getElementById(arguments[0]).data.map("
        "t=>({name:t.name||null,x:t.x||null,y:t.y||null,z:t.z||null}))",
        div,
    )


def _shot(driver: Any, name: str, at: str | None = None) -> None:
    """A screenshot of the top of the page, or of the part from the element ``at`` down."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    if at:
        driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", at)
    else:
        driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_pages_render_charts_that_match_sql(dashboard: Settings, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    s, day = dashboard, LATEST.isoformat()
    driver = browser
    driver.get(s.dashboard_url + "/")
    _wait_loaded(driver)
    find = driver.find_element
    latest = sql(
        s,
        f"select count(*) n, avg(pd) p, avg(label) o from scores where score_date='{day}'",
    )[0]
    assert find(By.ID, "kpi-accounts").text == f"{latest['n']:,}"
    assert find(By.ID, "kpi-pdr").text == f"{100 * latest['p']:.2f}%"
    assert find(By.ID, "kpi-odr").text == f"{100 * latest['o']:.2f}%"
    assert day in find(By.ID, "meta").text
    assert driver.execute_script("return typeof Plotly") == "object"

    dates = [r["d"] for r in sql(s, "select distinct cast(score_date as varchar) d from scores")]
    overview = _chart(driver, "chart-overview")
    assert sorted(overview[0]["x"]) == sorted(dates)
    by_tier = {
        r["risk_tier"]: r["n"]
        for r in sql(
            s, f"select risk_tier, count(*) n from scores where score_date='{day}' group by 1"
        )
    }
    dist = _chart(driver, "chart-distribution")
    assert {t["name"]: sum(t["y"]) for t in dist} == by_tier
    assert min(x for t in dist for x in t["x"]) > 300 and max(x for t in dist for x in t["x"]) < 850
    # the label states the range the scores really span on the configured scale
    spread = sql(s, f"select min(score) lo, max(score) hi from scores where score_date='{day}'")[0]
    label = driver.find_element("id", "dist-range").text
    assert label.startswith(f"(scores {spread['lo']}-{spread['hi']}, median ")
    assert label.endswith("on the 300-850 scale)")
    mig = _chart(driver, "chart-migration")[0]
    assert sum(map(sum, mig["z"])) == 300
    spend_chart = _chart(driver, "chart-spend")
    assert [sum(t["y"]) for t in spend_chart if t["name"] == "accounts with a jump"] == [5]
    drift = _chart(driver, "chart-drift")[0]
    assert set(drift["x"]) == {"(score)", *NUMERIC, *CATEGORICAL}
    seg = _chart(driver, "chart-segments")
    assert sum(sum(t["y"]) for t in seg) == pytest.approx(
        sql(s, f"select sum(exposure) e from scores where score_date='{day}'")[0]["e"]
    )
    # the points are drawn, not only held in memory
    charts = (
        "chart-overview",
        "chart-distribution",
        "chart-segments",
        "chart-drift",
        "chart-spend",
    )
    for div in charts:
        drawn = driver.find_elements(By.CSS_SELECTOR, f"#{div} .point")
        assert drawn, div
        assert int(find(By.ID, div).get_attribute("data-points")) > 0
    assert "every view has what it needs" in find(By.ID, "not-computed").text
    assert "no live scorer answers" in find(By.ID, "live-lag").text  # none runs in this test
    jump_rows = driver.find_elements(By.CSS_SELECTOR, "#spend-jumps tbody tr")
    assert len(jump_rows) == 5
    assert "not computed yet" in find(By.ID, "chart-vintage").text
    rolls = _chart(driver, "chart-roll-rates")[0]
    for row in rolls["z"]:
        rates = [r for r in row if r is not None]
        assert not rates or sum(rates) == pytest.approx(1.0)
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-roll-rates .hm, #chart-roll-rates image")

    rows = driver.find_elements(By.CSS_SELECTOR, "#highrisk tbody tr")
    assert len(rows) == 50
    top = sql(
        s,
        "select account_id, reason_1 from scores "
        f"where score_date='{day}' order by pd desc, account_id limit 1",
    )[0]
    first = rows[0].find_elements(By.TAG_NAME, "td")
    assert first[0].text == top["account_id"]
    assert first[6].text == (top["reason_1"] or "")
    find(By.CSS_SELECTOR, "#highrisk th[data-key='score']").click()
    find(By.CSS_SELECTOR, "#highrisk th[data-key='score']").click()
    shown = [
        int(r.find_elements(By.TAG_NAME, "td")[1].text)
        for r in driver.find_elements(By.CSS_SELECTOR, "#highrisk tbody tr")
    ]
    assert shown == sorted(shown)
    _shot(driver, "dashboard.png")
    _shot(driver, "dashboard-drift.png", at="chart-drift")

    # the migration from the run the rerun of the latest date replaced (same model and
    # features: every account stays in its tier)
    from selenium.webdriver.support.ui import Select

    (stamp,) = [r["replaced_at"] for r in get(s, "/api/meta")["replaced_runs"][day]]
    Select(find(By.ID, "from-filter")).select_by_value(f"{day}|{stamp}")
    _wait_loaded(driver)
    assert "the run replaced at" in find(By.ID, "mig-dates").text
    z = _chart(driver, "chart-migration")[0]["z"]
    assert sum(z[i][i] for i in range(len(z))) == sum(map(sum, z)) == 300
    Select(find(By.ID, "from-filter")).select_by_value(PREVIOUS.isoformat())
    _wait_loaded(driver)

    # filter: without Prime the distribution holds every other tier's accounts only
    find(By.CSS_SELECTOR, "#tier-filter input[value='Prime']").click()
    _wait_loaded(driver)
    dist = _chart(driver, "chart-distribution")
    assert sum(sum(t["y"]) for t in dist) == latest["n"] - by_tier.get("Prime", 0)
    assert "Prime" not in {t["name"] for t in dist}

    # segment: utilisation above 80% (and still without Prime)
    Select(find(By.ID, "util-filter")).select_by_visible_text("80-100%")
    _wait_loaded(driver)
    in_band = sql(
        s,
        "select count(*) n from scores s join features f on f.account_id = s.account_id "
        f"and f.obs_date = s.obs_date where s.score_date='{day}' and s.risk_tier <> 'Prime' "
        "and f.utilisation_avg_3m >= 0.8 and f.utilisation_avg_3m < 1.0",
    )[0]["n"]
    assert in_band > 0
    assert sum(sum(t["y"]) for t in _chart(driver, "chart-distribution")) == in_band
    Select(find(By.ID, "util-filter")).select_by_visible_text("all")
    _wait_loaded(driver)

    # click through to the riskiest account
    find(By.CSS_SELECTOR, "#highrisk tbody tr td a").click()
    _wait_loaded(driver)
    assert "account?id=" in driver.current_url
    account_id = find(By.ID, "account-id").text
    history = sql(
        s,
        f"select score from scores where account_id='{account_id}' order by score_date",
    )
    chart = _chart(driver, "chart-account")
    assert chart[0]["y"] == [h["score"] for h in history]
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-account .point")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#account-table tbody tr")) == len(history)
    # its events are the catalog's curated purchases of the account, if it has any
    bought = sql(s, f"select count(*) n from curated_purchase where account_id='{account_id}'")
    if bought[0]["n"]:
        assert int(find(By.ID, "chart-events").get_attribute("data-points")) > 0
    else:
        assert "no events" in find(By.ID, "chart-events").text
    assert "no live score" in find(By.ID, "live-score").text
    _shot(driver, "account.png")


def test_a_new_partition_reaches_the_warm_connection(dashboard: Settings) -> None:
    """Scoring another date while the dashboard runs: its views show it within seconds, without
    a restart (the warm connection is rebuilt when the scores' objects change)."""
    import time

    before = get(dashboard, "/api/meta")["score_dates"]
    extra = dt.date(2026, 3, 2)
    assert extra.isoformat() not in before
    run_batch(dashboard, extra)
    deadline = time.monotonic() + 30
    while extra.isoformat() not in get(dashboard, "/api/meta")["score_dates"]:
        assert time.monotonic() < deadline, "the dashboard never saw the new partition"
        time.sleep(0.5)
    over = records(get(dashboard, "/api/views/overview"))
    assert [r["accounts"] for r in over if r["score_date"] == extra.isoformat()] == [300]
    answer, _ = ask_dashboard(
        dashboard, f"select count(*) as n from scores where score_date = '{extra}'"
    )
    assert answer["n"].tolist() == [300]
