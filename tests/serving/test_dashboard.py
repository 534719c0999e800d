"""The analyst dashboard in a real headless browser (Debian's chromium), over real scores."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.fixtures import features_frame, write_features
from infra.services import free_port
from serving.batch import run_batch
from serving.processes import dashboard_service
from serving.storage import read_scores
from tests.serving.conftest import ServingWorld

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PREVIOUS = dt.date(2026, 2, 5)
LATEST = dt.date(2026, 3, 1)


@pytest.fixture(scope="module")
def dashboard_url(world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = world.settings
    run_batch(settings, PREVIOUS)
    # a month later the same accounts have drifted towards more arrears
    shifted = features_frame(300, dt.date(2026, 2, 28), seed=3, shift=1.0)
    shifted["account_id"] = features_frame(300, dt.date(2026, 2, 28), seed=2)["account_id"]
    write_features(settings, shifted, dt.date(2026, 2, 28))
    run_batch(settings, LATEST)
    settings = settings.with_overrides(
        dashboard_url=f"http://127.0.0.1:{free_port()}",
        state_dir=tmp_path_factory.mktemp("dashboard"),
    )
    service = dashboard_service(settings)
    service.up()
    try:
        yield settings.dashboard_url
    finally:
        service.down()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
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


def test_dashboard_renders_real_figures(
    dashboard_url: str, browser: object, world: ServingWorld
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(dashboard_url + "/")  # type: ignore[attr-defined]
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true"
    )
    latest = read_scores(world.settings, LATEST).to_pandas()
    find = driver.find_element  # type: ignore[attr-defined]
    assert find(By.ID, "kpi-accounts").text == f"{len(latest):,}"
    pdr = 100 * latest["pd"].mean()
    assert find(By.ID, "kpi-pdr").text == f"{pdr:.2f}%"
    odr = 100 * latest["label"].mean()
    assert find(By.ID, "kpi-odr").text == f"{odr:.2f}%"
    assert LATEST.isoformat() in find(By.ID, "meta").text

    tier_bars = driver.find_elements(By.CSS_SELECTOR, "#tiers rect.bar")  # type: ignore[attr-defined]
    counts = latest["risk_tier"].value_counts()
    assert [int(float(b.get_attribute("data-value"))) for b in tier_bars] == [
        int(counts.get(t, 0)) for t in ("Prime", "Near-prime", "Subprime", "High risk")
    ]
    hist = driver.find_elements(By.CSS_SELECTOR, "#hist rect.bar")  # type: ignore[attr-defined]
    assert sum(int(float(b.get_attribute("data-value"))) for b in hist) == len(latest)

    cells = driver.find_elements(By.CSS_SELECTOR, "#migration-table td")  # type: ignore[attr-defined]
    assert sum(int(c.text.replace(",", "")) for c in cells) == 300
    points = driver.find_elements(By.CSS_SELECTOR, "#psi circle.psi-point")  # type: ignore[attr-defined]
    assert len(points) >= 2

    rows = driver.find_elements(By.CSS_SELECTOR, "#highrisk tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == 50
    first = rows[0].find_elements(By.TAG_NAME, "td")
    top = latest.sort_values("pd", ascending=False).iloc[0]
    assert first[0].text == top["account_id"]
    assert first[6].text == (top["reason_1"] or "")
    # sort by score ascending: click once (descending), click again (ascending)
    header = find(By.CSS_SELECTOR, "#highrisk th[data-key='score']")
    header.click()
    find(By.CSS_SELECTOR, "#highrisk th[data-key='score']").click()
    shown = [
        int(r.find_elements(By.TAG_NAME, "td")[1].text)
        for r in driver.find_elements(By.CSS_SELECTOR, "#highrisk tbody tr")  # type: ignore[attr-defined]
    ]
    assert shown == sorted(shown)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    assert driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 10_000
